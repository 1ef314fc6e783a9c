"""A run's warnings reach its record, its page, its samplings and the studies built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from gan.models import Dataset, TrainingRun
from gan.services import sampling as sampling_services
from gan.services import training as training_services
from tests.gan.fixtures import TINY
from tests.turing.fixtures import plan_study

pytestmark = pytest.mark.django_db


def collapsed_run(dataset: Dataset) -> TrainingRun:
    """A run whose recorder was shown a fixed-noise grid of one flat picture per class at step 4 of 6."""
    config = training_services.config_build(overrides=TINY, demo=True)
    run = training_services.training_run_start(dataset=dataset, config=config, enqueue=False)
    recorder = training_services._RunRecorder(run, None, reference={"LYM": 0.21, "TUM": 0.18})
    flat = np.full((2 * 128, 2 * 128, 3), 200, dtype=np.uint8)
    recorder.sample(4, flat)
    return run


def test_a_collapsed_grid_is_recorded_as_a_warning_with_its_step(lym_tum: Dataset) -> None:
    run = collapsed_run(lym_tum)
    run.refresh_from_db()
    (warning,) = run.health["warnings"]
    assert warning["kind"] == "collapse" and warning["step"] == 4
    assert run.health["spreads"] == [[4, {"LYM": 0.0, "TUM": 0.0}]]


def test_a_real_training_records_its_reference_and_sample_spreads(lym_tum: Dataset) -> None:
    config = training_services.config_build(overrides=TINY, demo=True)
    run = training_services.training_run_start(dataset=lym_tum, config=config, enqueue=False)
    training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    run.refresh_from_db()
    assert set(run.health["reference"]) == {"LYM", "TUM"} and min(run.health["reference"].values()) > 0.05
    assert [step for step, _ in run.health["spreads"]] == [3, 6]


def test_the_run_page_sampling_page_and_builder_repeat_the_warning(
    manager_client: Client, lym_tum: Dataset, real_lym: Dataset, media_root: Path, manager: Any
) -> None:
    run = collapsed_run(lym_tum)
    page = manager_client.get(reverse("gan:run_detail", args=[run.pk])).content.decode()
    assert "Mode collapse at step 4" in page and "Collapse: after the first 10%" in page
    status = manager_client.get(reverse("gan:run_status", args=[run.pk])).json()
    assert status["warnings"] and status["warnings"][0].startswith("Mode collapse at step 4")
    training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    sampling = sampling_services.sampling_run_start(
        checkpoint=run.checkpoints.get(step=6), tissue_class="LYM", count=4, enqueue=False
    )
    early = sampling_services.sampling_run_start(
        checkpoint=run.checkpoints.get(step=3), tissue_class="LYM", count=4, enqueue=False
    )
    page = manager_client.get(reverse("gan:sampling_detail", args=[sampling.pk])).content.decode()
    assert "Training warnings" in page and "Mode collapse at step 4" in page
    page = manager_client.get(reverse("gan:sampling_detail", args=[early.pk])).content.decode()
    assert "Training warnings" not in page  # step 3 came before the warning
    sampling_services.sampling_run_execute(run=sampling, context=None, device_preference="cpu")
    plan = plan_study(
        tissue_class="LYM",
        real_datasets=[real_lym],
        synthetic_datasets=[sampling.dataset],
        items_per_reader=4,
    )
    assert any("whose training warned: Mode collapse at step 4" in w for w in plan.warnings)
