from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gan.models import Dataset
from gan.services import dataset_import

TINY = {
    "classes": ["LYM", "TUM"],
    "latent_dim": 16,
    "g_filters": 8,
    "d_filters": 8,
    "batch_size": 4,
    "steps": 6,
    "checkpoint_every": 3,
    "sample_every": 3,
    "log_every": 1,
    "grid_per_class": 2,
    "precision": "fp32",
    "weight_init": "pytorch",
}


@pytest.fixture
def lym_tum(db: Any, sample_root: Path, media_root: Path) -> Dataset:
    report = dataset_import(path=sample_root / "CRC-VAL-HE-7K", name="LYM+TUM", classes=["LYM", "TUM"])
    return Dataset.objects.get(pk=report.dataset_id)
