"""Training and sampling through the real broker and a real worker, including a worker killed mid-run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from core.models import Job
from gan.models import Dataset, TrainingRun
from gan.services import dataset_import
from gan.services import training as training_services
from tests.gan.fixtures import KILLABLE, TINY
from tests.servers import PATIENCE_S

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_dataset(sample_root: Path) -> Dataset:
    report = dataset_import(path=sample_root / "CRC-VAL-HE-7K", name="worker LYM+TUM", classes=["LYM", "TUM"])
    return Dataset.objects.get(pk=report.dataset_id)


def test_training_then_sampling_run_in_the_worker(
    celery_worker: Any, wait_for_job: Any, worker_dataset: Dataset
) -> None:
    config = training_services.config_build(overrides=TINY, demo=True)
    run = training_services.training_run_start(
        dataset=worker_dataset, config=config, sample_after={"tissue_class": "TUM", "count": 6}
    )
    job = wait_for_job(run.job_id, worker=celery_worker, timeout_s=PATIENCE_S)
    assert job.state == Job.State.FINISHED, job.error
    run.refresh_from_db()
    assert run.step == 6 and run.environment["device"] == "cpu"
    sampling_job = wait_for_job(
        Job.objects.get(kind="sampling").pk, worker=celery_worker, timeout_s=PATIENCE_S
    )
    assert sampling_job.state == Job.State.FINISHED, sampling_job.error
    sampling = sampling_job.samplingrun
    assert sampling.patches.count() == 6 and sampling.checkpoint.step == 6


def test_a_worker_killed_mid_run_is_resumed_from_its_last_checkpoint(
    celery_worker: Any, wait_for_job: Any, worker_dataset: Dataset
) -> None:
    steps = KILLABLE["steps"]
    config = training_services.config_build(
        overrides=KILLABLE,
        demo=True,
    )
    run = training_services.training_run_start(dataset=worker_dataset, config=config)
    deadline = time.monotonic() + PATIENCE_S
    while not run.checkpoints.filter(step__gte=10).exists():
        assert time.monotonic() < deadline, celery_worker.log()[-3000:]
        assert not Job.objects.get(pk=run.job_id).is_ended, Job.objects.get(pk=run.job_id).error
        time.sleep(0.1)
    celery_worker.kill()
    killed_at = TrainingRun.objects.get(pk=run.pk).step
    assert killed_at < steps, "the run ended before the worker could be killed"
    celery_worker.start()

    job = wait_for_job(run.job_id, worker=celery_worker, timeout_s=PATIENCE_S)
    assert job.state == Job.State.FINISHED, job.error
    assert job.attempts == 2
    run.refresh_from_db()
    assert TrainingRun.objects.count() == 1
    assert job.result["resumed_from"] >= 10 and job.result["step"] == steps
    assert run.step == steps
    assert [row[0] for row in run.history] == list(range(1, steps + 1))
    assert list(run.checkpoints.values_list("step", flat=True)) == list(range(5, steps + 1, 5))
