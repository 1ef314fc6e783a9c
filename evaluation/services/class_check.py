"""The class check of a synthetic set: what the tissue classifier calls its patches, against the class
they were declared as ("3 of 16 classified LYM"). Run as a job when a synthetic set is imported or
sampled, and again for the unchecked sets when a classifier finishes training; its result is kept on
the dataset (`Dataset.class_check`), shown on the dataset's page and in the study builder.

It is a screen, not a verdict: the classifier's own accuracy on real patches of the class is shown
beside it, and a set below `AGREEMENT_WARNING` of it is flagged for a look, never refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from core.models import Job
from core.services import job_create
from evaluation import jobs
from evaluation.models import Classifier
from evaluation.services.classifier import classifier_load, classifier_train_job
from evaluation.services.common import patches_load
from gan import imaging
from gan.models import Dataset, Source

if TYPE_CHECKING:
    from core.jobs import JobContext

CLASS_CHECK_MAX = 2000  # patches of a set the check reads (drawn by a fixed seed beyond that)
AGREEMENT_WARNING = 0.5  # a set whose agreement is below half the classifier's on real patches is flagged


def _classifier_for(tissue_class: str) -> Classifier | None:
    """The newest trained classifier that knows `tissue_class` (on any real dataset): its weights are
    saved only once its training has run to the end."""
    finished = Classifier.objects.exclude(weights="").select_related("dataset").order_by("-pk")
    return next((c for c in finished if tissue_class in c.config.get("classes", [])), None)


def class_check_start(*, dataset: Dataset) -> Job | None:
    """Queue the class check of a synthetic set (None for a real one); the dataset says it is pending."""
    if dataset.source != Source.SYNTHETIC:
        return None
    with transaction.atomic():
        Dataset.objects.filter(pk=dataset.pk).update(class_check={"state": "pending"})
        dataset.class_check = {"state": "pending"}
        return job_create(
            kind=jobs.CLASS_CHECK.kind,
            task_name=jobs.CLASS_CHECK.task_name,
            queue=jobs.CLASS_CHECK.queue,
            params={"dataset": dataset.pk},
            title=f"Class check of {dataset.name}",
        )


def _read_at(dataset: Dataset) -> float | None:
    """Micrometres per pixel of the dataset's patches as the classifier reads them (128 px)."""
    if dataset.microns_per_pixel is None:
        return None
    return dataset.microns_per_pixel * dataset.patch_size / imaging.PATCH_SIZE


def class_check_run(*, dataset: Dataset, device: str = "cpu") -> dict[str, Any]:
    """Classify (up to CLASS_CHECK_MAX of) the set's patches of each declared class; keep the result."""
    from neural.classifier import predict
    from neural.runtime import pick_device

    declared = sorted(set(dataset.patches.values_list("tissue_class", flat=True)))
    result: dict[str, Any] = {"state": "done", "checked_at": timezone.now().isoformat(), "classes": {}}
    for tissue_class in declared:
        classifier = _classifier_for(tissue_class)
        if classifier is None:
            result["classes"][tissue_class] = {"classifier": None}
            continue
        trained = classifier_load(classifier)
        rows = list(
            dataset.patches.filter(tissue_class=tissue_class).order_by("id").values_list("image", flat=True)
        )
        if len(rows) > CLASS_CHECK_MAX:
            chosen = np.random.default_rng(0).choice(len(rows), CLASS_CHECK_MAX, replace=False)
            rows = [rows[i] for i in sorted(chosen)]
        if dataset.patch_size < imaging.PATCH_SIZE:
            result["classes"][tissue_class] = {
                "classifier": classifier.pk,
                "unreadable": f"the tissue classifier reads {imaging.PATCH_SIZE} px patches; this set's are "
                f"{dataset.patch_size} px",
            }
            continue
        device_ = pick_device(device)
        labels = predict(trained.model(device_), patches_load(rows), device_)
        names = trained.config.classes
        counts = {names[i]: int(n) for i, n in enumerate(np.bincount(labels, minlength=len(names))) if n}
        agreeing = counts.get(tissue_class, 0)
        real_recall = (classifier.metrics.get("per_class_recall") or {}).get(tissue_class)
        accuracy = classifier.metrics.get("validation_accuracy")
        reference = real_recall if real_recall is not None else accuracy
        result["classes"][tissue_class] = {
            "classifier": classifier.pk,
            "classifier_dataset": classifier.dataset.name,
            "checked": len(rows),
            "agreeing": agreeing,
            "counts": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
            # The scale each side is read at (after the downsampling to 128 px), where known: a classifier
            # reading tissue at another scale than it learnt is a rougher guide, and the page says so.
            "read_at_um_per_px": _read_at(dataset),
            "classifier_um_per_px": _read_at(classifier.dataset),
            "classifier_recall": real_recall,  # of held-out real patches of the class, called the class
            "classifier_accuracy": accuracy,
            "flagged": bool(rows) and agreeing / len(rows) < AGREEMENT_WARNING * (reference or 1.0),
        }
    Dataset.objects.filter(pk=dataset.pk).update(class_check=result)
    dataset.class_check = result
    return result


def class_check_job(job: Job, context: JobContext) -> dict[str, Any]:
    dataset = Dataset.objects.get(pk=job.params["dataset"])
    return class_check_run(dataset=dataset, device=job.params.get("device", "cpu"))


def class_check_unchecked() -> list[Job]:
    """After a classifier is trained: check the synthetic sets that no classifier could check yet."""
    started = []
    for dataset in Dataset.objects.filter(source=Source.SYNTHETIC):
        check = dataset.class_check or {}
        never = not check or any(c.get("classifier") is None for c in check.get("classes", {}).values())
        if never and check.get("state") != "pending":
            job = class_check_start(dataset=dataset)
            if job is not None:
                started.append(job)
    return started


def classifier_train_then_check(job: Job, context: JobContext) -> dict[str, Any]:
    """The classifier's training job, then the check of the synthetic sets no classifier could check."""
    metrics = classifier_train_job(job, context)
    class_check_unchecked()
    return metrics
