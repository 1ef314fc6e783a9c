"""What the evaluation services share: their errors and the real patches they draw on."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.files.storage import default_storage

from gan import imaging
from gan.models import Dataset, Patch, Source


class EvaluationError(ValueError):
    """An evaluation that cannot be started as asked; the message says why."""


class ReportError(EvaluationError):
    """An FID report that cannot be made as asked."""


class ClassifierError(EvaluationError):
    """A tissue classifier that cannot be trained as asked."""


class ExperimentError(EvaluationError):
    """An augmentation experiment that cannot be run as asked."""


def real_pool(dataset: Dataset, tissue_class: str) -> Any:
    return Patch.objects.filter(dataset=dataset, source=Source.REAL, tissue_class=tissue_class)


def real_classes(dataset: Dataset) -> list[str]:
    return list(
        Patch.objects.filter(dataset=dataset, source=Source.REAL)
        .values_list("tissue_class", flat=True)
        .distinct()
    )


def patches_load(patch_names: list[str]) -> np.ndarray:
    """Stored patches as [N, 128, 128, 3] uint8, larger ones downsampled by the import's one filter."""
    size = imaging.PATCH_SIZE
    images = np.empty((len(patch_names), size, size, 3), dtype=np.uint8)
    for index, name in enumerate(patch_names):
        with default_storage.open(name, "rb") as handle:
            images[index] = imaging.decode_png_array(handle.read(), size)
    return images
