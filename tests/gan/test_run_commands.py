from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from core.models import Job
from gan.models import Dataset, SamplingRun, TrainingRun
from tests.gan.fixtures import TINY

pytestmark = pytest.mark.django_db


def _sets() -> list[str]:
    return [f"--set={k}={json.dumps(v)}" for k, v in TINY.items() if k not in {"classes", "steps"}]


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


def test_a_sample_class_the_run_will_not_learn_is_refused_before_the_run_exists(lym_tum: Dataset) -> None:
    with pytest.raises(CommandError, match="cannot sample ADI: not among the run's classes"):
        call_command(
            "train",
            "--dataset",
            "LYM+TUM",
            "--classes",
            "LYM,TUM",
            "--sample-class",
            "ADI",
            stderr=io.StringIO(),
        )
    assert not TrainingRun.objects.exists() and not Job.objects.exists()


def test_ctrl_c_on_a_foreground_run_cancels_its_job(lym_tum: Dataset, media_root: Path) -> None:
    """Stopped from the terminal, a job must not look running: a worker's recovery loop would take
    its stale heartbeat for a crash and resume what the user stopped."""
    from core.foreground import run_in_foreground
    from core.services import jobs_recover_orphans

    job = Job.objects.create(kind="training", task_name="gan.training_run", queue="gpu")

    def interrupted(job: Job, context: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(CommandError, match="interrupted"):
        run_in_foreground(job=job, body=interrupted, unit="training")
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED and "Ctrl-C" in job.message
    from datetime import timedelta

    from django.utils import timezone

    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(days=1))
    assert str(job.pk) not in jobs_recover_orphans()  # a stale heartbeat, but the job has ended
