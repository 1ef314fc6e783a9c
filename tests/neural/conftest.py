from __future__ import annotations

import numpy as np
import pytest

from neural.config import TrainingConfig, demo_config
from neural.data import PackedPatches
from tests.gan.fixtures import TINY


def tiny_config(**changes: object) -> TrainingConfig:
    """The tests' tiny network, deterministic, with DCGAN initialisation unless changed."""
    return demo_config(**(TINY | {"deterministic": True, "seed": 1, "weight_init": "dcgan"} | changes))


@pytest.fixture
def tiny_data() -> PackedPatches:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 128, 128, 3), dtype=np.uint8)
    labels = np.array([0, 1] * 5, dtype=np.int64)
    return PackedPatches.from_arrays(images, labels, ("LYM", "TUM"))
