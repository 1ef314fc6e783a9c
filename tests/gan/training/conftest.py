from __future__ import annotations

import numpy as np
import pytest

from gan.training.config import TrainingConfig, demo_config
from gan.training.data import PackedPatches


def tiny_config(**changes: object) -> TrainingConfig:
    base = {
        "classes": ("LYM", "TUM"),
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
        "deterministic": True,
        "seed": 1,
    }
    return demo_config(**(base | changes))


@pytest.fixture
def tiny_data() -> PackedPatches:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 128, 128, 3), dtype=np.uint8)
    labels = np.array([0, 1] * 5, dtype=np.int64)
    return PackedPatches.from_arrays(images, labels, ("LYM", "TUM"))
