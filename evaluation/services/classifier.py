"""The in-house tissue classifier (the second opinion beside FID), trained as a gpu-queue job."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from django.core.files.base import ContentFile

from core.jobs import job_start
from core.models import Job
from core.roles import UserLike
from evaluation import jobs
from evaluation.models import Classifier
from evaluation.services.common import ClassifierError, real_classes
from gan.imaging import PATCH_SIZE
from gan.models import Dataset
from gan.services.training import training_data_pack

if TYPE_CHECKING:
    from core.jobs import JobContext


def classifier_train_start(
    *,
    dataset: Dataset,
    classes: list[str] | None = None,
    epochs: int = 10,
    seed: int = 0,
    created_by: UserLike | None = None,
    device: str = "auto",
) -> Any:
    from neural.classifier import ClassifierConfig

    if dataset.patch_size < PATCH_SIZE:
        raise ClassifierError(
            f"Dataset {dataset.name!r} holds {dataset.patch_size} px patches: the tissue classifier reads "
            f"{PATCH_SIZE} px patches, the size the product's generator makes, and smaller ones are never "
            "upsampled."
        )
    present = sorted(set(real_classes(dataset)))
    chosen = tuple(classes or present)
    missing = [c for c in chosen if c not in present]
    if missing:
        raise ClassifierError(f"Dataset {dataset.name!r} has no patches of class(es) {', '.join(missing)}.")
    try:
        config = ClassifierConfig(classes=chosen, epochs=epochs, seed=seed)
    except ValueError as exc:
        raise ClassifierError(str(exc)) from None
    record = Classifier(dataset=dataset, config=config.to_dict())
    title = f"Tissue classifier on {dataset.name} ({', '.join(chosen)})"
    return job_start(
        kind=jobs.CLASSIFIER_TRAIN, record=record, title=title, created_by=created_by, device=device
    )


def classifier_train_job(job: Job, context: JobContext) -> dict[str, Any]:
    import torch

    from neural.classifier import ClassifierConfig, train_classifier
    from neural.runtime import pick_device

    classifier = Classifier.objects.select_related("dataset").get(job=job)
    config = ClassifierConfig.from_dict(classifier.config)
    # Larger real patches are read at the classifier's size, by the filter that makes every patch.
    data = training_data_pack(dataset=classifier.dataset, classes=config.classes, size=PATCH_SIZE)

    def progress(epoch: int, epochs: int, loss: float) -> None:
        context.progress(epoch / epochs, f"epoch {epoch} of {epochs}, loss {loss:.3f}", force=True)

    trained = train_classifier(
        config=config,
        data=data,
        device=pick_device(job.params.get("device", "auto")),
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

    from neural.classifier import ClassifierConfig, TrainedClassifier

    with classifier.weights.open("rb") as handle:
        saved = torch.load(handle, map_location="cpu", weights_only=True)
    return TrainedClassifier(saved["state"], ClassifierConfig.from_dict(saved["config"]), classifier.metrics)
