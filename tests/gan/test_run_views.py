from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from gan.models import Dataset, SamplingRun, TrainingRun
from gan.services import training as training_services
from tests.gan.fixtures import TINY

pytestmark = pytest.mark.django_db


def _overrides_text(**changes: Any) -> str:
    values = {k: v for k, v in (TINY | changes).items() if k not in {"classes", "steps"}}
    return "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())


def test_launch_page_queues_a_training_run(
    manager_client: Client, lym_tum: Dataset, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = manager_client.post(
            reverse("gan:run_new"),
            {
                "dataset": lym_tum.pk,
                "classes": ["LYM", "TUM"],
                "steps": 6,
                "demo": "on",
                "overrides": _overrides_text(),
                "sample_class": "LYM",
                "sample_count": 5,
            },
        )
    run = TrainingRun.objects.get()
    assert response["Location"] == reverse("gan:run_detail", args=[run.pk])
    assert run.config["g_filters"] == 8 and run.config["demo"] is True
    assert run.sample_after == {"tissue_class": "LYM", "count": 5}
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"overrides": "lr_g = 0"}, b"lr_g must be &gt; 0"),
        ({"overrides": "not a pair"}, b"expected `name = value`"),
        ({"classes": ["LYM", "ADI"]}, b"no patches of class(es) ADI"),
        ({"sample_class": "MUS"}, b"cannot sample class"),
    ],
)
def test_launch_page_shows_what_is_wrong(
    manager_client: Client, lym_tum: Dataset, fields: dict, message: bytes
) -> None:
    data = {"dataset": lym_tum.pk, "classes": ["LYM", "TUM"], "steps": 6, "demo": "on"} | fields
    response = manager_client.post(reverse("gan:run_new"), data)
    assert response.status_code == 200
    assert message in response.content
    assert not TrainingRun.objects.exists()


def test_run_page_status_chart_and_grid(manager_client: Client, lym_tum: Dataset) -> None:
    config = training_services.config_build(overrides=TINY, demo=True)
    run = training_services.training_run_start(dataset=lym_tum, config=config, enqueue=False)
    page = manager_client.get(reverse("gan:run_detail", args=[run.pk]))
    assert page.status_code == 200 and b"Demo configuration" in page.content
    assert manager_client.get(reverse("gan:run_grid", args=[run.pk])).status_code == 404

    training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    status = manager_client.get(reverse("gan:run_status", args=[run.pk])).json()
    assert (
        status["step"] == 6 and status["steps"] == 6 and [c["step"] for c in status["checkpoints"]] == [3, 6]
    )
    assert status["loss_g"] is not None and status["images_per_second"] > 0
    chart = manager_client.get(status["losses_url"])
    assert (
        chart["Content-Type"] == "image/svg+xml"
        and b"<svg" in chart.content
        and b"D on real" in chart.content
    )
    grid = manager_client.get(status["grid_url"])
    assert b"".join(grid.streaming_content)[:4] == b"\x89PNG"


def test_sampling_page_queues_a_sampling_run(
    manager_client: Client, lym_tum: Dataset, django_capture_on_commit_callbacks: Any
) -> None:
    config = training_services.config_build(overrides=TINY | {"steps": 3}, demo=True)
    run = training_services.training_run_start(dataset=lym_tum, config=config, enqueue=False)
    training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    checkpoint = run.checkpoints.get()
    form = manager_client.get(reverse("gan:sampling_new") + f"?checkpoint={checkpoint.pk}")
    assert form.status_code == 200
    bad = manager_client.post(
        reverse("gan:sampling_new"),
        {"checkpoint": checkpoint.pk, "tissue_class": "ADI", "count": 3, "seed": 0},
    )
    assert b"not one the checkpoint was trained on" in bad.content
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = manager_client.post(
            reverse("gan:sampling_new"),
            {"checkpoint": checkpoint.pk, "tissue_class": "LYM", "count": 3, "seed": 0},
        )
    sampling = SamplingRun.objects.get()
    assert response["Location"] == reverse("gan:sampling_detail", args=[sampling.pk])
    assert len(callbacks) == 1
    detail = manager_client.get(response["Location"])
    assert b"Demo configuration" in detail.content and b"Seeds 0 to 2" in detail.content


@pytest.mark.parametrize("name", ["gan:run_list", "gan:run_new", "gan:sampling_new"])
def test_run_pages_are_for_study_managers(expert_client: Client, name: str) -> None:
    assert expert_client.get(reverse(name)).status_code == 403
