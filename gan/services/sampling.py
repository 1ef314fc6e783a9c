"""Sampling runs: synthetic patches of one class from one checkpoint, through the common pipeline."""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from core.filecache import StoredFileError, store_content_addressed, store_pool
from core.jobs import JobError, job_start
from core.models import Job
from core.roles import UserLike, signed_in
from gan import imaging, jobs
from gan.models import Checkpoint, Dataset, Patch, SamplingRun, Source, TrainingRun, patch_storage_name
from gan.services.checkpoints import RunError, checkpoint_check, checkpoint_local, checkpoint_sha256
from gan.services.datasets import Generator
from gan.signals import sampling_finished
from gan.sources import PAPER_SYNTHETIC_COUNT

if TYPE_CHECKING:
    from core.jobs import JobContext

MAX_COUNT = 1_000_000


def _sampling_dataset_name(run_name: str, step: int, count: int, tissue_class: str) -> str:
    """A name a study manager recognises: run, checkpoint step, count, class and date (#2, #3, ... when
    the same sampling is made again the same day)."""
    base = f"{run_name[:120]}, step {step:,}: {count:,} {tissue_class} ({timezone.localdate():%Y-%m-%d})"
    name, n = base, 1
    while Dataset.objects.filter(name=name).exists():
        n += 1
        name = f"{base} #{n}"
    return name


def _generator_description(run: TrainingRun) -> str:
    architecture = run.config.get("architecture", "paper")
    demo = " (demo configuration, not the paper's model)" if run.is_demo else ""
    return f"Conditional GAN ({architecture} architecture) trained in histoturing{demo}"


def sampling_run_start(
    *,
    checkpoint: Checkpoint,
    tissue_class: str,
    count: int = PAPER_SYNTHETIC_COUNT,
    seed: int = 0,
    created_by: UserLike | None = None,
    device: str = "auto",
    enqueue: bool = True,
) -> SamplingRun:
    """Check the request against the checkpoint, then queue the sampling on the gpu queue."""
    if not 1 <= count <= MAX_COUNT:
        raise RunError(f"count must be between 1 and {MAX_COUNT:,}, got {count}")
    if seed < 0:
        raise RunError(f"seed must not be negative, got {seed}")
    config = checkpoint_check(checkpoint=checkpoint)
    tissue_class = tissue_class.strip().upper()
    if tissue_class not in config.classes:
        raise RunError(
            f"class {tissue_class!r} is not one the checkpoint was trained on ({', '.join(config.classes)})"
        )
    run = checkpoint.run
    with transaction.atomic():
        dataset = Dataset.objects.create(
            name=_sampling_dataset_name(run.name, checkpoint.step, count, tissue_class),
            source=Source.SYNTHETIC,
            is_demo=run.is_demo,
            created_by=signed_in(created_by),
            provenance={
                "training_run": run.pk,
                "checkpoint_step": checkpoint.step,
                "tissue_class": tissue_class,
                "seeds": f"{seed} to {seed + count - 1}",
                "pipeline_version": imaging.PIPELINE_VERSION,
                "demo_model": run.is_demo,
                "size": imaging.PATCH_SIZE,
                "generator": Generator(
                    name=run.name,
                    kind="GAN",
                    description=_generator_description(run),
                    checkpoint_sha256=checkpoint_sha256(checkpoint),
                    sampling={
                        "step": checkpoint.step,
                        "class": tissue_class,
                        "first_seed": seed,
                        "count": count,
                    },
                    origin="sampled in histoturing",
                ).as_dict(),
            },
        )
        record = SamplingRun(
            checkpoint=checkpoint, tissue_class=tissue_class, count=count, seed=seed, dataset=dataset
        )
        return job_start(
            kind=jobs.SAMPLING,
            record=record,
            title=f"Sampling: {count:,} {tissue_class} from {run.name}, step {checkpoint.step:,}",
            created_by=created_by,
            device=device,
            enqueue=enqueue,
        )


def sampling_run_execute(
    *, run: SamplingRun, context: JobContext | None, device_preference: str = "auto", batch_size: int = 64
) -> dict[str, Any]:
    """Generate the run's missing images (a retry adds no duplicates) and store them as patches."""
    from neural.runtime import environment, pick_device
    from neural.sampling import generate, load_generator

    device = pick_device(device_preference)
    try:
        path = checkpoint_local(run.checkpoint)
    except StoredFileError as exc:
        raise RunError(f"the checkpoint to sample from: {exc}") from None
    generator, config, step = load_generator(path, device)
    run.environment = environment(device) | {"precision": "fp32"}
    run.save(update_fields=["environment"])
    class_index = config.classes.index(run.tissue_class)
    done = set(run.patches.values_list("seed", flat=True))
    seeds = [s for s in range(run.seed, run.seed + run.count) if s not in done]
    stored = len(done)
    step_of = {"training_run": run.checkpoint.run_id, "checkpoint_step": step}

    def store(seed: int, pixels: np.ndarray) -> Patch:
        image = imaging.from_array(pixels)
        digest = imaging.content_hash(image)
        name = store_content_addressed(
            patch_storage_name(run.dataset_id, digest), lambda: imaging.encode_png(image)
        )
        return Patch(
            dataset_id=run.dataset_id,
            tissue_class=run.tissue_class,
            source=Source.SYNTHETIC,
            content_hash=digest,
            image=name,
            sampling_run=run,
            seed=seed,
            provenance=step_of,
        )

    def record(pending: list[Future[Patch]]) -> None:
        nonlocal stored
        patches = [future.result() for future in pending]
        with transaction.atomic():
            Patch.objects.bulk_create(patches, ignore_conflicts=True)
        stored += len(patches)
        if context is not None:
            context.progress(stored / run.count, f"{stored:,} of {run.count:,} patches", {"stored": stored})
            context.raise_if_cancelled()

    # A batch is encoded and stored (an object store answers each write over the network) by a pool of
    # threads while the next batch is generated; its rows are written once all of it is stored.
    pool = store_pool()
    pending: list[Future[Patch]] = []
    try:
        for chunk, images in generate(
            generator, class_index=class_index, seeds=seeds, device=device, batch_size=batch_size
        ):
            submitted = [pool.submit(store, seed, pixels) for seed, pixels in zip(chunk, images, strict=True)]
            if pending:
                record(pending)
            pending = submitted
        if pending:
            record(pending)
    finally:
        for future in pending:  # a run stopped half-way leaves none of its stores running
            future.cancel()
    total = run.patches.count()
    return {"stored": total, "requested": run.count, "duplicates_of_other_seeds": run.count - total}


def sampling_run_job(job: Job, context: JobContext) -> dict[str, Any]:
    from neural.checkpoint import CheckpointError  # imports PyTorch

    run = SamplingRun.objects.select_related("checkpoint__run").get(job=job)
    try:
        outcome = sampling_run_execute(
            run=run, context=context, device_preference=job.params.get("device", "auto")
        )
    except (CheckpointError, RunError) as exc:
        raise JobError(str(exc)) from None
    sampling_finished.send(sender=SamplingRun, run=run)
    return outcome
