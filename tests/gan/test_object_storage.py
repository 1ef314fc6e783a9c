"""The site and its workers on an S3 object store, sharing nothing but PostgreSQL, Redis and the store.

A real S3 server process (moto's server mode, over HTTP on the loopback), a Redis of the test's own and
real Celery workers whose data folders and MEDIA_ROOT are empty and apart from the site's (this test
process): an upload is imported, a run trains, its worker is killed mid-run and a worker on an empty
folder resumes it from the store, the sampled set is stored, a study is built of it and read.
"""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse

from config.env import Env
from config.settings import media_storage
from core.models import Job
from gan.models import Dataset, SamplingRun, TrainingRun
from gan.services import dataset_import_upload
from gan.services import training as training_services
from tests.conftest import REPO, WorkerProcess, _database_url
from tests.gan.fixtures import KILLABLE
from tests.servers import PATIENCE_S, PrivateRedis, S3Server
from tests.turing.fixtures import create_study
from tests.turing.test_blinding import _assert_blind

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

DEMO = REPO / "demo" / "data" / "CRC-VAL-HE-7K"


@pytest.fixture
def s3(tmp_path: Path) -> Any:
    server = S3Server(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def site_on_s3(
    settings: Any, s3: S3Server, redis_server: PrivateRedis, tmp_path: Path, monkeypatch: Any
) -> Path:
    """This test process as the web host: media on the S3 server, a media folder and cache of its own
    (that must stay empty of media), and jobs sent to the test's own Redis."""
    from config.celery import app

    settings.STORAGES = {**settings.STORAGES, "default": media_storage(Env(s3.env()))}
    settings.MEDIA_ROOT = tmp_path / "web" / "media"
    settings.WORKER_CACHE_DIR = tmp_path / "web" / "cache"
    send = app.send_task

    def to_the_private_broker(name: str, *args: Any, **kwargs: Any) -> Any:
        with app.connection_for_write(redis_server.url) as conn:
            return send(name, *args, connection=conn, **kwargs)

    monkeypatch.setattr(app, "send_task", to_the_private_broker)
    return tmp_path / "web"


@pytest.fixture
def no_session_worker(celery_worker: WorkerProcess) -> Any:
    """The suite's own worker, stopped for the test: it shares the database and would take up a job
    whose worker was killed, on its own folder storage."""
    celery_worker.stop()
    yield
    celery_worker.start()


def _worker(folder: Path, s3: S3Server, redis_server: PrivateRedis) -> WorkerProcess:
    """A worker on another host: an empty data folder and media folder of its own, the same database,
    broker, object store and secret key as the site, and nothing else."""
    folder.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in {"WORKER_CACHE_DIR", "MEDIA_ROOT"}} | {
        "DATABASE_URL": _database_url(connection.settings_dict),
        "SECRET_KEY": django_settings.SECRET_KEY,
        "HISTOTURING_DATA_DIR": str(folder / "data"),
        "MEDIA_ROOT": str(folder / "media"),
        "CELERY_BROKER_URL": redis_server.url,
        "JOB_HEARTBEAT_TIMEOUT_S": "6",
        "PYTHONUNBUFFERED": "1",
        **s3.env(),
    }
    worker = WorkerProcess(folder / "worker.log", env, name=f"{folder.name}@%h")
    worker.start()
    return worker


def _upload() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for tissue_class in ("LYM", "TUM"):
            for path in sorted((DEMO / tissue_class).iterdir()):
                archive.write(path, f"{tissue_class}/{path.name}")
    return SimpleUploadedFile("demo-lym-tum.zip", buffer.getvalue(), content_type="application/zip")


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_workers_on_other_hosts_share_nothing_but_the_services(
    no_session_worker: None,
    site_on_s3: Path,
    s3: S3Server,
    redis_server: PrivateRedis,
    wait_for_job: Any,
    tmp_path: Path,
    expert: Any,
    manager: Any,
) -> None:
    first = _worker(tmp_path / "host-1", s3, redis_server)
    workers = [first]
    try:
        # An upload goes to the store; the worker fetches it from there, imports it, and it is removed.
        job = dataset_import_upload(
            archive=_upload(), name="demo LYM+TUM", classes=["LYM", "TUM"], created_by=manager
        )
        assert any(key.startswith("uploads/") for key in s3.objects())
        job = wait_for_job(job.pk, worker=first, timeout_s=PATIENCE_S)
        assert job.state == Job.State.FINISHED, job.error
        dataset = Dataset.objects.get(name="demo LYM+TUM")
        assert dataset.patches.count() == 24
        assert not s3.objects("uploads/")
        assert {p.image.name for p in dataset.patches.all()} <= set(s3.objects())

        # A run trains on the first worker, which is killed once it has published a checkpoint.
        steps = KILLABLE["steps"]
        config = training_services.config_build(
            overrides=KILLABLE,
            demo=True,
        )
        run = training_services.training_run_start(
            dataset=dataset, config=config, sample_after={"tissue_class": "LYM", "count": 12}
        )
        deadline = time.monotonic() + PATIENCE_S
        while not run.checkpoints.filter(step__gte=10).exists():
            assert time.monotonic() < deadline, first.log()[-3000:]
            assert not Job.objects.get(pk=run.job_id).is_ended, Job.objects.get(pk=run.job_id).error
            time.sleep(0.1)
        first.kill()
        killed_at = TrainingRun.objects.get(pk=run.pk).step
        assert killed_at < steps, "the run ended before the worker could be killed"
        published = list(run.checkpoints.values_list("file", "sha256"))
        assert all(name in s3.objects("checkpoints/") and len(sha) == 64 for name, sha in published)
        assert len(s3.objects("packs/")) == 3  # the pack, published for any worker to fetch

        # A worker on another, empty folder resumes it from the store and samples the set it asked for.
        second = _worker(tmp_path / "host-2", s3, redis_server)
        workers.append(second)
        job = wait_for_job(run.job_id, worker=second, timeout_s=PATIENCE_S)
        assert job.state == Job.State.FINISHED, job.error
        assert job.attempts == 2 and job.result["resumed_from"] >= 10 and job.result["step"] == steps
        # The run keeps both starts: which worker, from which published checkpoint.
        starts = TrainingRun.objects.get(pk=run.pk).environment["starts"]
        assert [s["worker"].split("@")[0] for s in starts] == ["host-1", "host-2"]
        assert [s["from_step"] for s in starts] == [0, job.result["resumed_from"]]
        assert (
            starts[1]["checkpoint_sha256"]
            == dict(published)[run.checkpoints.get(step=job.result["resumed_from"]).file.name]
        )
        sampling = SamplingRun.objects.get(checkpoint__run=run)
        sampling_job = wait_for_job(sampling.job_id, worker=second, timeout_s=PATIENCE_S)
        assert sampling_job.state == Job.State.FINISHED, sampling_job.error
        samples = list(sampling.patches.all())
        assert len(samples) == 12 and {p.image.name for p in samples} <= set(s3.objects())
        # The second host cached what it read (the pack, the checkpoint it resumed from) and stored no
        # media on its disk; nor did the first, nor the site.
        cached = _files_under(tmp_path / "host-2" / "data" / "cache")
        assert any(p.name.endswith(".images.npy") for p in cached)
        assert any(p.suffix == ".pt" for p in cached)
        for folder in (tmp_path / "host-1" / "media", tmp_path / "host-2" / "media", site_on_s3 / "media"):
            assert not _files_under(folder), folder
    finally:
        for worker in workers:
            worker.stop()

    # A study of the stored sets, served by the site from the store, read blind: no address, bucket or
    # signature of the store reaches the expert.
    study = create_study(
        name="on the store",
        real_datasets=[dataset],
        synthetic_datasets=[sampling.dataset],
        items_per_reader=8,
        readers=[expert],
        created_by=manager,
        seed=7,
        ask_profile=False,
    )
    seen = _assert_blind(study, expert, {s3.BUCKET, f"127.0.0.1:{s3.port}", "amazonaws", "X-Amz"})
    assert len(seen) == 8
    for info in seen.values():
        assert not any(name.lower().startswith("x-amz") for name, _ in info["headers"])
    # A manager's views of stored files (a patch, the run's sample grid) stream them from the store.
    client = Client()
    client.force_login(manager)
    patch = samples[0]
    response = client.get(reverse("gan:patch_image", args=[patch.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert (
        b"".join(response.streaming_content)
        == s3.client().get_object(Bucket=s3.BUCKET, Key=patch.image.name)["Body"].read()
    )
    grid = client.get(reverse("gan:run_grid", args=[run.pk]))
    assert grid.status_code == 200 and b"".join(grid.streaming_content).startswith(b"\x89PNG")
    # The run's page says it was started twice, and from what the second start resumed.
    page = client.get(reverse("gan:run_detail", args=[run.pk])).content.decode()
    resumed = job.result["resumed_from"]
    assert "Started 2 times:" in page and f"resumed from the published checkpoint of step {resumed}" in page
