"""Augmentation experiments: does adding synthetic patches help the tissue classifier? (gpu-queue jobs)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.jobs import job_start
from core.models import Job
from core.roles import UserLike
from evaluation import jobs
from evaluation.models import AugmentationExperiment
from evaluation.services.common import ExperimentError, patches_load, real_classes
from gan.imaging import PATCH_SIZE
from gan.models import Dataset, Patch, SamplingRun, Source
from gan.services.training import training_data_pack

if TYPE_CHECKING:
    from core.jobs import JobContext


DEFAULT_EXPERIMENT_CLASSIFIER = {"epochs": 5, "batch_size": 32, "width": 16, "validation_share": 0.0}


@dataclass
class AugmentationPlan:
    """An experiment as it would run, checked before anything is written: `experiment` is its record,
    unsaved (datasets, class and the stored protocol); `problems` says what is wrong."""

    experiment: AugmentationExperiment
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def augmentation_plan(
    *,
    train_dataset: Dataset,
    test_dataset: Dataset,
    sampling_run: SamplingRun,
    tissue_class: str,
    amounts: list[int],
    fraction: float = 0.25,
    seeds: list[int] | None = None,
    classes: list[str] | None = None,
    classifier: dict[str, Any] | None = None,
) -> AugmentationPlan:
    """Every check of an experiment, each problem said once, before any training starts."""
    from neural.classifier import ClassifierConfig  # imports PyTorch

    tissue_class = tissue_class.strip().upper()
    chosen = tuple(classes or sorted(set(real_classes(train_dataset))))
    classifier = DEFAULT_EXPERIMENT_CLASSIFIER | (classifier or {})
    config = {  # the stored protocol
        "amounts": sorted(set(amounts)),
        "fraction": fraction,
        "seeds": seeds or [0, 1, 2],
        "classes": list(chosen),
        "classifier": classifier,
    }
    plan = AugmentationPlan(
        AugmentationExperiment(
            train_dataset=train_dataset,
            test_dataset=test_dataset,
            sampling_run=sampling_run,
            tissue_class=tissue_class,
            config=config,
        )
    )
    synthetic_available = sampling_run.patches.count()
    problems = plan.problems
    small = [d.name for d in (train_dataset, test_dataset) if d.patch_size < PATCH_SIZE]
    if small:
        problems.append(
            f"{', '.join(small)} hold(s) patches smaller than {PATCH_SIZE} px, the size the sampling run "
            "made: larger ones are downsampled to it, smaller ones never upsampled."
        )
    if sampling_run.tissue_class != tissue_class:
        problems.append(
            f"The sampling run made {sampling_run.tissue_class} patches, not {tissue_class}: "
            f"choose a run of class {tissue_class}."
        )
    if tissue_class not in chosen:
        problems.append(f"Class {tissue_class} is not among the classes {', '.join(chosen)}.")
    if not amounts or any(k < 0 for k in amounts):
        problems.append("Give at least one amount of synthetic patches (0 or more each).")
    elif max(amounts) > synthetic_available:
        problems.append(
            f"The largest amount ({max(amounts)}) is more than the {synthetic_available} synthetic patches."
        )
    elif max(amounts) == 0:
        problems.append("At least one amount must be above 0.")
    if not 0 < fraction <= 1:
        problems.append(
            f"The fraction of real {tissue_class} patches kept must be in (0, 1], got {fraction}."
        )
    for dataset, role in ((train_dataset, "training"), (test_dataset, "test")):
        counts = dict.fromkeys(chosen, 0)
        for cls in Patch.objects.filter(
            dataset=dataset, source=Source.REAL, tissue_class__in=chosen
        ).values_list("tissue_class", flat=True):
            counts[cls] += 1
        empty = [c for c, n in counts.items() if n == 0]
        if empty:
            problems.append(
                f"The {role} set {dataset.name!r} has no patches of class(es) {', '.join(empty)}."
            )
    overlap = (
        Patch.objects.filter(dataset=train_dataset, tissue_class__in=chosen)
        .filter(content_hash__in=Patch.objects.filter(dataset=test_dataset).values("content_hash"))
        .count()
    )
    if overlap:
        problems.append(
            f"The training and test sets share {overlap} patches (the same content hash): use sets from "
            "different slides, e.g. NCT-CRC-HE-100K against CRC-VAL-HE-7K."
        )
    try:
        ClassifierConfig(classes=chosen, **classifier)
    except (TypeError, ValueError) as exc:
        problems.append(f"Invalid classifier settings: {exc}")
    return plan


def augmentation_start(
    *, plan: AugmentationPlan, created_by: UserLike | None = None, device: str = "auto", enqueue: bool = True
) -> AugmentationExperiment:
    """Queue the experiment a plan describes (`augmentation_plan`), or refuse it with every problem named."""
    if not plan.ok:
        raise ExperimentError(" ".join(plan.problems))
    record = plan.experiment
    amounts = ", ".join(map(str, record.config["amounts"]))
    title = f"Augmentation experiment: {record.tissue_class}, amounts {amounts}"
    return job_start(
        kind=jobs.AUGMENTATION,
        record=record,
        title=title,
        created_by=created_by,
        device=device,
        enqueue=enqueue,
    )


def augmentation_job(job: Job, context: JobContext) -> dict[str, Any]:
    from neural.augmentation import run_experiment
    from neural.runtime import environment, pick_device

    experiment = AugmentationExperiment.objects.select_related(
        "train_dataset", "test_dataset", "sampling_run"
    ).get(job=job)
    config = experiment.config
    classes = tuple(config["classes"])
    # At the sampling run's size: a larger real set is read downsampled by the import's one filter.
    train = training_data_pack(dataset=experiment.train_dataset, classes=classes, size=PATCH_SIZE)
    test = training_data_pack(dataset=experiment.test_dataset, classes=classes, size=PATCH_SIZE)
    synthetic = patches_load(sorted(experiment.sampling_run.patches.values_list("image", flat=True)))
    device = pick_device(job.params.get("device", "auto"))

    def progress(done: int, total: int, what: str) -> None:
        context.progress(done / total, f"{done} of {total} trainings ({what})", force=True)
        context.raise_if_cancelled()

    results = run_experiment(
        train=train,
        test=test,
        synthetic=synthetic,
        tissue_class=experiment.tissue_class,
        amounts=config["amounts"],
        fraction=config["fraction"],
        seeds=config["seeds"],
        classifier=config["classifier"],
        device=device,
        progress_fn=progress,
    )
    results["protocol"] = {
        "train_dataset": experiment.train_dataset.name,
        "train_counts": train.class_counts(),
        "test_dataset": experiment.test_dataset.name,
        "test_counts": test.class_counts(),
        "sampling_run": experiment.sampling_run_id,
        "checkpoint_step": experiment.sampling_run.checkpoint.step,
        "training_run": experiment.sampling_run.checkpoint.run_id,
        "synthetic_available": len(synthetic),
        "environment": environment(device),
    } | config
    experiment.results = results
    experiment.save(update_fields=["results"])
    return {"arms": len(results["arms"])}
