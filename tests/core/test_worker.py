"""Round trips through the real broker to a real worker process."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from core import services
from core.models import Job
from gan.models import Dataset

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_task_sent_through_the_broker_runs_in_a_real_worker(celery_worker: Any, wait_for_job: Any) -> None:
    job = services.job_create(kind="ping", task_name="core.ping", params={"echo": "hello"})
    job = wait_for_job(job.pk, worker=celery_worker)
    assert job.state == Job.State.FINISHED, job.error
    assert job.result["echo"] == "hello"
    assert job.result["pid"] != os.getpid()
    assert job.worker.startswith("test-")


def test_import_from_the_page_runs_as_a_task(
    celery_worker: Any, wait_for_job: Any, manager_client: Client, sample_root: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for tif in sorted((sample_root / "CRC-VAL-HE-7K").rglob("*.png")):
            zf.write(tif, tif.relative_to(sample_root).as_posix())
    with archive.open("rb") as handle:
        response = manager_client.post(
            reverse("gan:dataset_import"),
            {"archive": handle, "name": "Uploaded VAL", "classes": ["LYM", "TUM"]},
        )
    assert response.status_code == 302, response.content
    job = Job.objects.get(kind="import")
    assert response["Location"] == reverse("job_detail", args=[job.pk])
    job = wait_for_job(job.pk, worker=celery_worker)
    assert job.state == Job.State.FINISHED, job.error
    assert job.result["imported"] == {"LYM": 12, "TUM": 12}
    assert Dataset.objects.get(name="Uploaded VAL").patches.count() == 24
    status = manager_client.get(reverse("job_status", args=[job.pk])).json()
    assert status["ended"] and any("LYM" in line for line in status["result"]["lines"])
    assert not Path(job.params["path"]).exists()  # the upload is removed once imported


def test_a_failing_import_is_marked_failed_with_its_reason(
    celery_worker: Any, wait_for_job: Any, manager: Any, tmp_path: Path
) -> None:
    from gan.services import dataset_import_start

    (tmp_path / "empty").mkdir()
    job = dataset_import_start(path=tmp_path / "empty", name="nothing", classes=None, created_by=manager)
    job = wait_for_job(job.pk, worker=celery_worker)
    assert job.state == Job.State.FAILED
    assert "no image files found" in job.error
