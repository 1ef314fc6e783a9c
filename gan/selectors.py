from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count

from gan.models import Dataset, Patch


def dataset_class_counts(*, dataset: Dataset) -> dict[str, int]:
    rows = dataset.patches.values("tissue_class").annotate(n=Count("id")).order_by("tissue_class")
    return {row["tissue_class"]: row["n"] for row in rows}


def datasets_overview() -> list[dict[str, Any]]:
    """Every dataset with its patch count per class, in two queries."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for row in Patch.objects.values("dataset_id", "tissue_class").annotate(n=Count("id")):
        counts[row["dataset_id"]][row["tissue_class"]] = row["n"]
    return [
        {
            "dataset": dataset,
            "classes": dict(sorted(counts[dataset.pk].items())),
            "total": sum(counts[dataset.pk].values()),
        }
        for dataset in Dataset.objects.all()
    ]


def dataset_sample_patches(*, dataset: Dataset, per_class: int = 6) -> dict[str, list[Patch]]:
    sample: dict[str, list[Patch]] = {}
    for tissue_class in dataset_class_counts(dataset=dataset):
        sample[tissue_class] = list(
            dataset.patches.filter(tissue_class=tissue_class).order_by("id")[:per_class]
        )
    return sample
