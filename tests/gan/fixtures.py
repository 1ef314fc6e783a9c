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
    # The paper's layout in miniature (the demo's own texture networks: tests/neural/test_texture.py).
    "architecture": "paper",
    "train_crop": 0,
    "loss": "bce",
    "spectral_norm": False,
    "augmentations": [],
}
# Long enough to be killed part-way (a checkpoint every 5 of 60 steps), for the tests of a worker killed
# mid-run.
KILLABLE = TINY | {
    "g_filters": 32,
    "d_filters": 32,
    "latent_dim": 64,
    "batch_size": 16,
    "steps": 60,
    "checkpoint_every": 5,
    "sample_every": 20,
}


@pytest.fixture
def redis_server(tmp_path: Path) -> Any:
    """A Redis server of the test's own (`tests.servers.PrivateRedis`), killed at the end."""
    from tests.servers import PrivateRedis

    try:
        server = PrivateRedis(tmp_path)
    except FileNotFoundError as exc:
        pytest.skip(f"needs a Redis server binary: {exc}")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def lym_tum(db: Any, sample_root: Path, media_root: Path) -> Dataset:
    report = dataset_import(path=sample_root / "CRC-VAL-HE-7K", name="LYM+TUM", classes=["LYM", "TUM"])
    return Dataset.objects.get(pk=report.dataset_id)


@pytest.fixture
def sampling_run(lym_tum: Dataset) -> Any:
    """A tiny trained checkpoint and 12 synthetic LYM patches sampled from it."""
    from gan.services import sampling as sampling_services
    from gan.services import training as training_services

    config = training_services.config_build(overrides=TINY | {"steps": 3}, demo=True)
    run = training_services.training_run_start(dataset=lym_tum, config=config, enqueue=False)
    training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    sampling = sampling_services.sampling_run_start(
        checkpoint=run.checkpoints.get(step=3), tissue_class="LYM", count=12, enqueue=False
    )
    sampling_services.sampling_run_execute(run=sampling, context=None, device_preference="cpu")
    return sampling
