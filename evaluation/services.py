"""Writes of the evaluation app: FID reports as background jobs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction

from core.models import Job
from evaluation.models import FidReport
from gan import imaging
from gan.models import Dataset, Patch, SamplingRun, Source

if TYPE_CHECKING:
    from core.jobs import JobContext


class ReportError(ValueError):
    """A report that cannot be made as asked; the message says why."""


def _real_pool(dataset: Dataset, tissue_class: str) -> Any:
    return Patch.objects.filter(dataset=dataset, source=Source.REAL, tissue_class=tissue_class)


def fid_report_start(
    *,
    sampling_run: SamplingRun,
    real_dataset: Dataset | None = None,
    n_images: int | None = None,
    seed: int = 0,
    created_by: Any = None,
) -> FidReport:
    """Check the sizes, then queue the report (on the gpu queue: Inception runs best there)."""
    real_dataset = real_dataset or sampling_run.checkpoint.run.dataset
    available = sampling_run.patches.count()
    n = n_images or available
    if available == 0:
        raise ReportError("The sampling run holds no patches yet.")
    if n > available:
        raise ReportError(
            f"The sampling run holds {available} patches, fewer than the {n} the report asks for."
        )
    real_available = _real_pool(real_dataset, sampling_run.tissue_class).count()
    if real_available < n:
        raise ReportError(
            f"The real pool ({real_dataset.name}) holds {real_available} {sampling_run.tissue_class} "
            "patches, "
            f"fewer than the {n} synthetic ones: compare equal numbers, or ask for fewer."
        )
    if n < 2:
        raise ReportError("A report needs at least 2 images on each side.")
    from core.services import job_create

    with transaction.atomic():
        job = job_create(
            kind="fid",
            task_name="evaluation.fid_report",
            title=f"FID: {sampling_run.tissue_class} samples of {sampling_run.checkpoint.run.name} (N = {n})",
            queue=Job.Queue.GPU,
            created_by=created_by,
        )
        return FidReport.objects.create(
            sampling_run=sampling_run,
            real_dataset=real_dataset,
            n_images=n,
            seed=seed,
            job=job,
            created_by=job.created_by,
        )


def _load(patch_names: list[str]) -> np.ndarray:
    images = np.empty((len(patch_names), 128, 128, 3), dtype=np.uint8)  # [N, 128, 128, 3]
    for index, name in enumerate(patch_names):
        with default_storage.open(name, "rb") as handle:
            images[index] = imaging.decode_png_array(handle.read())
    return images


def fid_report_job(job: Job, context: JobContext) -> dict[str, Any]:
    """The body of the FID task: draw the images, compute, store."""
    from core.jobs import JobError
    from evaluation.fid import FidError, fid_report
    from gan.training.loop import pick_device

    report = FidReport.objects.select_related("sampling_run", "real_dataset").get(job=job)
    run = report.sampling_run
    rng = np.random.default_rng(report.seed)
    synthetic_names = sorted(run.patches.values_list("image", flat=True))
    real_names = sorted(_real_pool(report.real_dataset, run.tissue_class).values_list("image", flat=True))
    if len(synthetic_names) < report.n_images or len(real_names) < report.n_images:
        raise JobError(
            f"Too few patches: {len(synthetic_names)} synthetic and {len(real_names)} real "
            f"for N = {report.n_images}."
        )
    pick = lambda names: [names[i] for i in sorted(rng.choice(len(names), report.n_images, replace=False))]  # noqa: E731
    context.progress(
        0.1, f"Loading {report.n_images} synthetic and {report.n_images} real patches", force=True
    )
    synthetic, real = _load(pick(synthetic_names)), _load(pick(real_names))
    classifier = classifier_for(dataset=report.real_dataset, tissue_class=run.tissue_class)
    if classifier is not None:
        from evaluation.classifier import second_opinion

        context.progress(0.2, "Second opinion: the tissue classifier's features", force=True)
        report.second_opinion = second_opinion(
            trained=classifier_load(classifier),
            real=real,
            synthetic=synthetic,
            tissue_class=run.tissue_class,
            device=pick_device("auto"),
        ) | {"classifier": classifier.pk}
        report.save(update_fields=["second_opinion"])  # kept even if the Inception step fails below
    context.progress(0.3, "Computing Inception features", force=True)
    try:
        result = fid_report(
            real=real,
            synthetic=synthetic,
            weights_path=Path(settings.FID_WEIGHTS_PATH),
            device=pick_device("auto"),
        )
    except FidError as exc:
        raise JobError(str(exc)) from None
    report.fid, report.kid_mean, report.kid_std = result.fid, result.kid_mean, result.kid_std
    report.precision, report.recall = result.precision, result.recall
    report.protocol = result.protocol | {"seed": report.seed, "real_dataset": report.real_dataset.name}
    report.save()
    return {"fid": result.fid, "kid_mean": result.kid_mean, "standard": result.protocol["standard_weights"]}


# --- The tissue classifier (second opinion) -----------------------------------------------------


def classifier_train_start(
    *,
    dataset: Dataset,
    classes: list[str] | None = None,
    epochs: int = 10,
    seed: int = 0,
    created_by: Any = None,
) -> Any:
    from core.services import job_create
    from evaluation.classifier import ClassifierConfig
    from evaluation.models import Classifier

    present = sorted(set(_real_classes(dataset)))
    chosen = tuple(classes or present)
    missing = [c for c in chosen if c not in present]
    if missing:
        raise ReportError(f"Dataset {dataset.name!r} has no patches of class(es) {', '.join(missing)}.")
    try:
        config = ClassifierConfig(classes=chosen, epochs=epochs, seed=seed)
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    with transaction.atomic():
        job = job_create(
            kind="classifier",
            task_name="evaluation.classifier_train",
            title=f"Tissue classifier on {dataset.name} ({', '.join(chosen)})",
            queue=Job.Queue.GPU,
            created_by=created_by,
        )
        return Classifier.objects.create(
            dataset=dataset, config=config.to_dict(), job=job, created_by=job.created_by
        )


def _real_classes(dataset: Dataset) -> list[str]:
    return list(
        Patch.objects.filter(dataset=dataset, source=Source.REAL)
        .values_list("tissue_class", flat=True)
        .distinct()
    )


def classifier_train_job(job: Job, context: JobContext) -> dict[str, Any]:
    import io

    import torch
    from django.core.files.base import ContentFile

    from evaluation.classifier import ClassifierConfig, train_classifier
    from evaluation.models import Classifier
    from gan.services.training import training_data_pack
    from gan.training.loop import pick_device

    classifier = Classifier.objects.select_related("dataset").get(job=job)
    config = ClassifierConfig.from_dict(classifier.config)
    data = training_data_pack(dataset=classifier.dataset, classes=config.classes)

    def progress(epoch: int, epochs: int, loss: float) -> None:
        context.progress(epoch / epochs, f"epoch {epoch} of {epochs}, loss {loss:.3f}", force=True)

    trained = train_classifier(
        config=config,
        data=data,
        device=pick_device("auto"),
        progress_fn=progress,
        abort_fn=context.should_abort,
    )
    context.raise_if_cancelled()
    buffer = io.BytesIO()
    torch.save({"state": trained.state, "config": config.to_dict()}, buffer)
    classifier.weights.save(f"classifiers/{classifier.pk}.pt", ContentFile(buffer.getvalue()), save=False)
    classifier.metrics = trained.metrics
    classifier.save(update_fields=["weights", "metrics"])
    return trained.metrics


def classifier_load(classifier: Any) -> Any:
    import torch

    from evaluation.classifier import ClassifierConfig, TrainedClassifier

    with classifier.weights.open("rb") as handle:
        saved = torch.load(handle, map_location="cpu", weights_only=True)
    return TrainedClassifier(saved["state"], ClassifierConfig.from_dict(saved["config"]), classifier.metrics)


def classifier_for(*, dataset: Dataset, tissue_class: str) -> Any:
    """The newest finished classifier trained on `dataset` that knows `tissue_class`, or None."""
    from evaluation.models import Classifier

    for classifier in Classifier.objects.filter(dataset=dataset, job__state=Job.State.FINISHED).exclude(
        weights=""
    ):
        if tissue_class in classifier.config.get("classes", []):
            return classifier
    return None


# --- The augmentation experiment ---------------------------------------------------------------

DEFAULT_EXPERIMENT_CLASSIFIER = {"epochs": 5, "batch_size": 32, "width": 16, "validation_share": 0.0}


def augmentation_start(
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
    created_by: Any = None,
    enqueue: bool = True,
) -> Any:
    """Check everything before any training starts, then queue the experiment."""
    from core.services import job_create
    from evaluation.classifier import ClassifierConfig
    from evaluation.models import AugmentationExperiment

    tissue_class = tissue_class.strip().upper()
    seeds = seeds or [0, 1, 2]
    chosen = tuple(classes or sorted(set(_real_classes(train_dataset))))
    if sampling_run.tissue_class != tissue_class:
        raise ReportError(
            f"The sampling run made {sampling_run.tissue_class} patches, not {tissue_class}: "
            f"choose a run of class {tissue_class}."
        )
    if tissue_class not in chosen:
        raise ReportError(f"Class {tissue_class} is not among the classes {', '.join(chosen)}.")
    available = sampling_run.patches.count()
    if not amounts or any(k < 0 for k in amounts):
        raise ReportError("Give at least one amount of synthetic patches (0 or more each).")
    if max(amounts) > available:
        raise ReportError(
            f"The largest amount ({max(amounts)}) is more than the {available} synthetic patches."
        )
    if max(amounts) == 0:
        raise ReportError("At least one amount must be above 0.")
    if not 0 < fraction <= 1:
        raise ReportError(
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
            raise ReportError(
                f"The {role} set {dataset.name!r} has no patches of class(es) {', '.join(empty)}."
            )
    overlap = (
        Patch.objects.filter(dataset=train_dataset, tissue_class__in=chosen)
        .filter(content_hash__in=Patch.objects.filter(dataset=test_dataset).values("content_hash"))
        .count()
    )
    if overlap:
        raise ReportError(
            f"The training and test sets share {overlap} patches (the same content hash): use sets from "
            "different slides, e.g. NCT-CRC-HE-100K against CRC-VAL-HE-7K."
        )
    settings_ = DEFAULT_EXPERIMENT_CLASSIFIER | (classifier or {})
    try:
        ClassifierConfig(classes=chosen, **settings_)
    except (TypeError, ValueError) as exc:
        raise ReportError(f"Invalid classifier settings: {exc}") from None
    with transaction.atomic():
        job = job_create(
            kind="augmentation",
            task_name="evaluation.augmentation",
            title=f"Augmentation experiment: {tissue_class}, amounts {', '.join(map(str, amounts))}",
            queue=Job.Queue.GPU,
            created_by=created_by,
            enqueue=enqueue,
        )
        return AugmentationExperiment.objects.create(
            train_dataset=train_dataset,
            test_dataset=test_dataset,
            sampling_run=sampling_run,
            tissue_class=tissue_class,
            config={
                "amounts": sorted(set(amounts)),
                "fraction": fraction,
                "seeds": seeds,
                "classes": list(chosen),
                "classifier": settings_,
            },
            job=job,
            created_by=job.created_by,
        )


def augmentation_job(job: Job, context: JobContext) -> dict[str, Any]:
    from evaluation.augmentation import run_experiment
    from evaluation.models import AugmentationExperiment
    from gan.services.training import training_data_pack
    from gan.training.loop import environment, pick_device

    experiment = AugmentationExperiment.objects.select_related(
        "train_dataset", "test_dataset", "sampling_run"
    ).get(job=job)
    config = experiment.config
    classes = tuple(config["classes"])
    train = training_data_pack(dataset=experiment.train_dataset, classes=classes)
    test = training_data_pack(dataset=experiment.test_dataset, classes=classes)
    synthetic = _load(sorted(experiment.sampling_run.patches.values_list("image", flat=True)))
    device = pick_device("auto")

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
