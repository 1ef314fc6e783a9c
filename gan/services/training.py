"""Training runs: checked before they start, run as jobs on the gpu queue, resumable after a crash."""

from __future__ import annotations

import hashlib
import io
import logging
import math
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image

from core import filecache
from core.filecache import StoredFileError, cache_root
from core.jobs import JobCancelled, JobError, job_start
from core.models import Job
from core.roles import UserLike
from gan import imaging, jobs
from gan.models import Checkpoint, Dataset, SamplingRun, Source, TrainingRun
from gan.services.checkpoints import RunError, checkpoint_check, checkpoint_local, checkpoint_publish
from gan.services.sampling import sampling_run_start
from gan.sources import PAPER_SYNTHETIC_COUNT
from neural import health
from neural.config import ConfigError, TrainingConfig, demo_config
from neural.data import DataError, open_pack, pack_exists, pack_patches

# PyTorch is imported where it is used, not here: web processes load this module but never train,
# and importing torch would cost each gunicorn worker about half a gigabyte.
if TYPE_CHECKING:
    from core.jobs import JobContext
    from neural.data import PackedPatches
    from neural.loop import Progress

logger = logging.getLogger(__name__)


def config_build(*, overrides: dict[str, Any] | None = None, demo: bool = False) -> TrainingConfig:
    """The paper's config (or the CPU demo config) with `overrides`, validated."""
    try:
        base = demo_config() if demo else TrainingConfig()
        return base.replace(**(overrides or {}))
    except ConfigError as exc:
        raise RunError(str(exc)) from None
    except TypeError as exc:
        raise RunError(f"invalid config: {exc}") from None


def _class_counts(dataset: Dataset, classes: tuple[str, ...]) -> dict[str, int]:
    counts = {c: 0 for c in classes}
    for tissue_class in dataset.patches.filter(tissue_class__in=classes).values_list(
        "tissue_class", flat=True
    ):
        counts[tissue_class] += 1
    return counts


def training_run_start(
    *,
    dataset: Dataset,
    config: TrainingConfig,
    name: str = "",
    created_by: UserLike | None = None,
    init_checkpoint: Checkpoint | None = None,
    sample_after: dict[str, Any] | None = None,
    device: str = "auto",
    enqueue: bool = True,
) -> TrainingRun:
    """Check everything that can be checked, then queue the run on the gpu queue."""
    if dataset.source != Source.REAL:
        raise RunError(f"dataset {dataset.name!r} holds synthetic patches: train on a real dataset")
    if dataset.patch_size != imaging.PATCH_SIZE:
        raise RunError(
            f"dataset {dataset.name!r} holds {dataset.patch_size} px patches: the cGAN makes "
            f"{imaging.PATCH_SIZE} px patches and trains on that size"
        )
    counts = _class_counts(dataset, config.classes)
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        raise RunError(f"dataset {dataset.name!r} has no patches of class(es) {', '.join(empty)}")
    if init_checkpoint is not None:
        checkpoint_check(checkpoint=init_checkpoint, config=config)
    if sample_after and sample_after.get("tissue_class") not in config.classes:
        raise RunError(
            f"cannot sample class {sample_after.get('tissue_class')!r}: it is not among the run's classes"
        )
    run_name = name or f"{'Demo c' if config.demo else 'C'}GAN on {dataset.name}, {config.steps:,} steps"
    title = f"Training: {run_name}"
    record = TrainingRun(
        name=run_name,
        dataset=dataset,
        config=config.to_dict(),
        init_checkpoint=init_checkpoint,
        sample_after=sample_after or {},
    )
    return job_start(
        kind=jobs.TRAINING, record=record, title=title, created_by=created_by, device=device, enqueue=enqueue
    )


PACK_PARTS = (".images.npy", ".labels.npy", ".json")  # the marker, `.json`, is written and published last


def training_data_pack(
    *, dataset: Dataset, classes: tuple[str, ...], size: int | None = None
) -> PackedPatches:
    """The dataset's patches of `classes` as a memory-mapped uint8 array, packed once and reused.

    `size`: the patches at this size, a larger set downsampled by the import's one filter (the tissue
    classifier reads 128 px whatever the real set's size); None, their stored size.

    A pack is named by its content (the patches' hashes and classes), kept in storage beside the patches
    so that any worker can fetch it instead of decoding every patch again, and memory-mapped from the
    worker's own cache: training reads no byte of storage per step. Order: the worker's cache, then
    storage, then packing from the patches (and publishing the pack)."""
    rows = list(
        dataset.patches.filter(tissue_class__in=classes)
        .order_by("id")
        .values_list("id", "content_hash", "tissue_class")
    )
    if size is not None and size > dataset.patch_size:
        raise ValueError(f"{dataset.patch_size} px patches are never upsampled to {size} px")
    resized = (size,) if size is not None and size != dataset.patch_size else ()  # in the key: another pack
    content = [(r[1], r[2]) for r in rows]
    key = hashlib.sha256(repr((classes, content, *resized)).encode()).hexdigest()[:32]
    local = filecache.cache_root() / "packs" / key
    stored = f"packs/{key}"
    if pack_exists(local):
        filecache.touch(local.with_name(local.name + part) for part in PACK_PARTS)
        return open_pack(local)
    if default_storage.exists(stored + ".json"):
        for part in PACK_PARTS:
            filecache.stored_copy_to(stored + part, local.with_name(local.name + part))
        filecache.cache_trim(keep=[local])
        return open_pack(local)
    index = {c: i for i, c in enumerate(classes)}
    names = dict(dataset.patches.filter(id__in=[r[0] for r in rows]).values_list("id", "image"))

    def read(row: tuple[int, str, str]) -> tuple[np.ndarray, int]:
        with default_storage.open(names[row[0]], "rb") as handle:
            return imaging.decode_png_array(handle.read(), size), index[row[2]]

    def items() -> Any:
        # Read a few hundred at a time by the store's threads (each read from an object store waits on
        # the network), in order, holding no more than one slice's images at once.
        for start in range(0, len(rows), 256):
            yield from filecache.store_pool().map(read, rows[start : start + 256])

    pack = pack_patches(items(), count=len(rows), classes=classes, path=local)
    for part in PACK_PARTS:
        filecache.store_file(local.with_name(local.name + part), stored + part, exact=True)
    filecache.cache_trim(keep=[local])
    return pack


class _RunRecorder:
    """Writes a run's progress, sample grids and checkpoints back to the database and storage."""

    def __init__(
        self,
        run: TrainingRun,
        context: JobContext | None,
        flush_every_s: float = 1.0,
        reference: dict[str, float] | None = None,
        config: TrainingConfig | None = None,
    ) -> None:
        self.run = run
        self.context = context
        self.flush_every_s = flush_every_s
        self.config = config or TrainingConfig.from_dict(run.config)
        if reference is not None:
            run.health = {**run.health, "reference": reference}
            run.save(update_fields=["health"])
        self._pending: list[list[float | None]] = []
        self._last_flush = 0.0
        self._latest: Progress | None = None

    def progress(self, progress: Progress) -> None:
        self._latest = progress
        losses = (progress.loss_d_real, progress.loss_d_fake, progress.loss_g)
        # JSON has no NaN: a loss that broke down is kept as null (and warned about).
        self._pending.append([progress.step, *(round(v, 5) if math.isfinite(v) else None for v in losses)])
        if time.monotonic() - self._last_flush >= self.flush_every_s or progress.step == progress.steps:
            self.flush()

    def flush(self) -> None:
        progress = self._latest
        if progress is None:
            return
        self._last_flush = time.monotonic()
        run = self.run
        new = health.check_losses(run.history[-2 * health.WINDOW :] + self._pending)
        run.history = [*run.history, *self._pending]
        self._pending = []
        self._merge_warnings(new)
        run.step, run.epoch = progress.step, progress.epoch
        run.loss_d_real, run.loss_d_fake, run.loss_g = (
            progress.loss_d_real,
            progress.loss_d_fake,
            progress.loss_g,
        )
        run.images_per_second, run.seconds_left = progress.images_per_second, progress.seconds_left
        run.save(
            update_fields=[
                "history",
                "step",
                "epoch",
                "loss_d_real",
                "loss_d_fake",
                "loss_g",
                "images_per_second",
                "seconds_left",
                *(["health"] if new else []),  # the health record only when it changed
            ]
        )
        if self.context is not None:
            message = (
                f"step {progress.step:,} of {progress.steps:,}, {progress.images_per_second:,.0f} images/s"
            )
            self.context.progress(
                progress.step / progress.steps, message, {"step": progress.step}, force=True
            )

    def sample(self, step: int, grid: np.ndarray) -> None:
        buffer = io.BytesIO()
        Image.fromarray(grid).save(buffer, format="PNG", compress_level=6)
        previous = self.run.grid.name
        self.run.grid.name = default_storage.save(
            f"runs/{self.run.pk}/grid-{step:07d}.png", ContentFile(buffer.getvalue())
        )
        self.run.grid_step = step
        spreads = health.grid_spreads(grid, self.config.classes)
        record = self.run.health
        record["spreads"] = [*record.get("spreads", []), [step, {k: round(v, 4) for k, v in spreads.items()}]]
        self._merge_warnings(
            health.check_samples(
                step=step, steps=self.config.steps, spreads=spreads, reference=record.get("reference", {})
            )
        )
        self.run.save(update_fields=["grid", "grid_step", "health"])
        if previous and previous != self.run.grid.name:
            default_storage.delete(previous)

    def _merge_warnings(self, new: list[health.HealthWarning]) -> None:
        """Add new warnings to the run's record (saved by the caller with what else it writes)."""
        if not new:
            return
        record = self.run.health
        record["warnings"] = health.merge(record.get("warnings", []), new)
        for warning in new:
            logger.warning("run %s: %s", self.run.pk, warning.message)

    def checkpoint(self, step: int, path: Path) -> None:
        self.flush()
        checkpoint_publish(run=self.run, step=step, path=path)
        path.unlink()  # its content stays in the cache (cache_adopt) until the cache needs the room


def _latest_usable_checkpoint(run: TrainingRun) -> tuple[Checkpoint, Path] | None:
    """The newest checkpoint of the run that loads, and its local copy; a file cut short by a crash, or
    missing from storage, or not the one published, is passed over."""
    from neural.checkpoint import CheckpointError, load_checkpoint

    for checkpoint in run.checkpoints.order_by("-step"):
        try:
            path = checkpoint_local(checkpoint)
            load_checkpoint(path)
        except (CheckpointError, StoredFileError) as exc:
            logger.warning("checkpoint %s of run %s is unusable (%s): skipped", checkpoint.step, run.pk, exc)
            continue
        return checkpoint, path
    return None


def training_run_execute(
    *, run: TrainingRun, context: JobContext | None, device_preference: str = "auto"
) -> dict[str, Any]:
    """Train (or continue training) a run; used by the task and by the `train` command."""
    from neural.loop import train
    from neural.runtime import environment, pick_device

    config = TrainingConfig.from_dict(run.config)
    device = pick_device(device_preference)
    starts = list(run.environment.get("starts", []))
    # The earlier starts are kept in this first write too: a job killed while its pack is built must not
    # lose them.
    run.environment = environment(device) | {"starts": starts}
    run.save(update_fields=["environment"])
    data = training_data_pack(dataset=run.dataset, classes=config.classes)
    usable = _latest_usable_checkpoint(run)
    resume_from = usable[0] if usable is not None else None
    resume_path: Path | None = None
    if usable is not None:
        # Work after the last checkpoint is redone: drop what was recorded of it.
        resume_from, resume_path = usable
        run.history = [row for row in run.history if row[0] <= resume_from.step]
        run.step = resume_from.step
        run.save(update_fields=["history", "step"])
    elif run.init_checkpoint is not None:
        try:
            resume_path = checkpoint_local(run.init_checkpoint)
        except StoredFileError as exc:
            raise RunError(f"the checkpoint to start from: {exc}") from None
    # Every start of the run, kept: which worker took it up, when, and from which published checkpoint.
    starts.append(
        {
            "worker": (context.job.worker if context is not None else "") or "a terminal (manage.py train)",
            "at": timezone.now().isoformat(timespec="seconds"),
            "device": str(device),
            "from_step": resume_from.step if resume_from is not None else 0,
            "checkpoint_sha256": resume_from.sha256 if resume_from is not None else "",
        }
    )
    run.environment = run.environment | {"starts": starts}  # `starts` now holds this start as well
    run.save(update_fields=["environment"])
    reference = health.real_spreads(data.images, data.labels, config.classes, seed=config.seed)
    recorder = _RunRecorder(run, context, reference=reference, config=config)
    # Checkpoints are written here, then stored and published (checkpoint_publish): a local scratch
    # folder of this worker's, never a path of the web host's.
    checkpoint_dir = cache_root() / "runs" / f"run-{run.pk}"
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # what a killed attempt left half-written here
    result = train(
        config=config,
        data=data,
        device=device,
        checkpoint_dir=checkpoint_dir,
        progress_fn=recorder.progress,
        abort_fn=context.should_abort if context is not None else None,
        sample_fn=recorder.sample,
        checkpoint_fn=recorder.checkpoint,
        resume=resume_path,
    )
    recorder.flush()
    return {
        "status": result.status,
        "step": result.step,
        "resumed_from": resume_from.step if resume_from else None,
    }


def training_run_job(job: Job, context: JobContext) -> dict[str, Any]:
    """The body of the training task."""
    from neural.checkpoint import CheckpointError  # imports PyTorch

    run = TrainingRun.objects.select_related("dataset").get(job=job)
    try:
        outcome = training_run_execute(
            run=run, context=context, device_preference=job.params.get("device", "auto")
        )
    except (CheckpointError, DataError, ConfigError, RunError) as exc:
        raise JobError(str(exc)) from None
    if outcome["status"] == "cancelled":
        raise JobCancelled
    if run.sample_after:
        sampling_after_training(run=run)
    return outcome


def sampling_after_training(*, run: TrainingRun) -> Any:
    """Start the sampling a run asked for, once: a second call (the training job delivered again after
    its worker died between starting the sampling and finishing the job) finds it and starts nothing.

    From the last checkpoint, and from each step in `sample_after["also_from_steps"]` that has one (the
    demo samples an early checkpoint too, as a second arm). Returns the last checkpoint's sampling."""
    last = run.checkpoints.order_by("-step").first()
    if last is None:
        return None
    tissue_class = str(run.sample_after["tissue_class"]).strip().upper()
    count, seed = (
        int(run.sample_after.get("count", PAPER_SYNTHETIC_COUNT)),
        int(run.sample_after.get("seed", 0)),
    )
    also = [int(s) for s in run.sample_after.get("also_from_steps", [])]
    checkpoints = [last, *run.checkpoints.filter(step__in=also).exclude(pk=last.pk).order_by("step")]
    with transaction.atomic():
        TrainingRun.objects.select_for_update().filter(pk=run.pk).first()  # one caller at a time
        started = []
        for checkpoint in checkpoints:
            existing = SamplingRun.objects.filter(
                checkpoint=checkpoint, tissue_class=tissue_class, count=count, seed=seed
            ).first()
            started.append(
                existing
                or sampling_run_start(
                    checkpoint=checkpoint,
                    tissue_class=tissue_class,
                    count=count,
                    seed=seed,
                    created_by=run.created_by,
                )
            )
        return started[0]
