from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from core.models import Job
from gan.models import Dataset, SamplingRun, TrainingRun
from tests.gan.fixtures import TINY

pytestmark = pytest.mark.django_db


def _sets() -> list[str]:
    return [f"--set={k}={v}" for k, v in TINY.items() if k not in {"classes", "steps"}]


def test_train_and_sample_commands_run_in_the_foreground(lym_tum: Dataset, media_root: Path) -> None:
    out = io.StringIO()
    call_command(
        "train",
        "--dataset",
        "LYM+TUM",
        "--demo",
        "--classes",
        "LYM,TUM",
        "--steps",
        "6",
        "--device",
        "cpu",
        "--sample-class",
        "TUM",
        "--sample-count",
        "4",
        *_sets(),
        stdout=out,
        stderr=io.StringIO(),
    )
    run = TrainingRun.objects.get()
    assert run.job.state == Job.State.FINISHED and run.step == 6
    assert "Finished at step 6 of 6" in out.getvalue()
    sampling = SamplingRun.objects.get()
    assert sampling.tissue_class == "TUM" and sampling.patches.count() == 4
    assert "4 patches in dataset" in out.getvalue()


def test_train_command_reports_bad_input(lym_tum: Dataset) -> None:
    with pytest.raises(CommandError, match="no dataset named 'nope'.*LYM\\+TUM"):
        call_command("train", "--dataset", "nope", stderr=io.StringIO())
    with pytest.raises(CommandError, match="lr_d must be > 0"):
        call_command(
            "train", "--dataset", "LYM+TUM", "--classes", "LYM,TUM", "--set", "lr_d=-1", stderr=io.StringIO()
        )
    with pytest.raises(CommandError, match="no checkpoint with id 999"):
        call_command("sample", "--checkpoint", "999", stderr=io.StringIO())
    assert not TrainingRun.objects.exists()
