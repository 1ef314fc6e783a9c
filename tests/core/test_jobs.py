from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core import jobs, selectors, services
from core.models import Job

pytestmark = pytest.mark.django_db


def _job(**fields: Any) -> Job:
    return Job.objects.create(kind="ping", task_name="core.ping", **fields)


def test_job_create_enqueues_only_after_commit(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = services.job_create(kind="ping", task_name="core.ping")
    assert job.state == Job.State.QUEUED
    assert len(callbacks) == 1


def test_job_start_saves_the_record_with_its_job_or_neither(manager: Any) -> None:
    from django.db import IntegrityError

    from evaluation.jobs import CLASSIFIER_TRAIN
    from evaluation.models import Classifier
    from gan.models import Dataset

    dataset = Dataset.objects.create(name="real", source="real")
    record = Classifier(dataset=dataset, config={"epochs": 1})
    started = jobs.job_start(
        kind=CLASSIFIER_TRAIN, record=record, title="t", created_by=manager, device="cpu", enqueue=False
    )
    started.refresh_from_db()
    assert started.job.params == {"device": "cpu"} and started.job.queue == Job.Queue.GPU
    assert started.created_by == manager == started.job.created_by
    broken = Classifier(dataset=dataset, config=None)  # config may not be empty: the record cannot be saved
    with pytest.raises(IntegrityError):
        jobs.job_start(kind=CLASSIFIER_TRAIN, record=broken, title="t", enqueue=False)
    assert Job.objects.count() == 1  # the second job went with its record


def test_a_queued_job_is_claimed_once() -> None:
    job = _job()
    assert services.job_claim(job_id=str(job.pk), worker="w1") is not None
    # A second delivery of the same message while the first worker is alive is skipped.
    assert services.job_claim(job_id=str(job.pk), worker="w2") is None
    job.refresh_from_db()
    assert (job.state, job.attempts, job.worker) == (Job.State.RUNNING, 1, "w1")


def test_a_running_job_with_a_stale_heartbeat_can_be_claimed_again(settings: Any) -> None:
    stale = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_S + 5)
    job = _job(state=Job.State.RUNNING, heartbeat_at=stale, attempts=1)
    claimed = services.job_claim(job_id=str(job.pk), worker="w2")
    assert claimed is not None and claimed.attempts == 2


def test_ended_jobs_are_never_claimed() -> None:
    for state in Job.ENDED_STATES:
        assert services.job_claim(job_id=str(_job(state=state).pk), worker="w") is None


def test_orphaned_jobs_are_requeued(settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    stale = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_S + 5)
    orphan = _job(state=Job.State.RUNNING, heartbeat_at=stale)
    alive = _job(state=Job.State.RUNNING, heartbeat_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        recovered = services.jobs_recover_orphans()
    assert recovered == [str(orphan.pk)]
    assert len(callbacks) == 1
    orphan.refresh_from_db()
    alive.refresh_from_db()
    assert orphan.state == Job.State.QUEUED and alive.state == Job.State.RUNNING


def _sent(minutes_ago: float, queue: str = Job.Queue.GPU) -> Job:
    """A queued job whose message went to the broker this many minutes ago."""
    return _job(queue=queue, enqueued_at=timezone.now() - timedelta(minutes=minutes_ago))


def test_jobs_whose_messages_the_broker_lost_are_sent_again(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.JOB_RESEND_AFTER_S = 60
    oldest, older = _sent(10), _sent(5)
    recent = _sent(0.1)  # its message may still be on its way: never re-sent yet
    _job()  # run in the foreground by a command: never sent at all
    _sent(10, queue=Job.Queue.DEFAULT)  # its own queue still holds its message
    sizes = {Job.Queue.GPU: 1, Job.Queue.DEFAULT: 1}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        resent = services.jobs_resend_lost(queue_size=sizes.get)
    # gpu: three queued jobs, one message left: the two waiting longest are sent again.
    assert resent == [str(oldest.pk), str(older.pk)] and len(callbacks) == 2
    oldest.refresh_from_db()
    recent.refresh_from_db()
    assert oldest.enqueued_at > timezone.now() - timedelta(seconds=5) and "lost" in oldest.message
    assert recent.message == ""
    # Sent again just now: not again at the next round, even if the gpu queue looks empty.
    assert services.jobs_resend_lost(queue_size={Job.Queue.GPU: 0, Job.Queue.DEFAULT: 1}.get) == []


def test_nothing_is_sent_again_when_the_broker_cannot_be_asked_or_holds_every_message(
    settings: Any,
) -> None:
    settings.JOB_RESEND_AFTER_S = 60
    _sent(10)
    _sent(10)
    assert services.jobs_resend_lost(queue_size=lambda queue: None) == []
    assert services.jobs_resend_lost(queue_size=lambda queue: 2) == []
    assert services.jobs_resend_lost(queue_size=lambda queue: 5) == []  # duplicates count too


def test_the_broker_counts_a_queue_s_waiting_messages() -> None:
    from config.celery import app

    queue = f"count-test-{timezone.now().timestamp():.0f}"
    assert selectors.broker_queue_size(queue=queue) == 0  # a queue that never held anything
    for _ in range(3):
        app.send_task("core.ping", kwargs={"job_id": "none"}, queue=queue)
    try:
        assert selectors.broker_queue_size(queue=queue) == 3
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
    assert selectors.broker_queue_size(queue=queue, url="redis://127.0.0.1:1/0", timeout_s=1) is None


def test_cancel_of_a_queued_job_is_immediate() -> None:
    job = services.job_cancel(job=_job())
    assert job.state == Job.State.CANCELLED
    assert services.job_claim(job_id=str(job.pk), worker="w") is None


def test_job_run_records_result_errors_and_cancellation() -> None:
    ok = _job()
    assert jobs.job_run(job_id=str(ok.pk), worker="w", body=lambda job, ctx: {"n": 1}) == "finished"
    ok.refresh_from_db()
    assert ok.result == {"n": 1} and ok.progress == 1.0 and ok.finished_at is not None

    def bad_input(job: Job, ctx: jobs.JobContext) -> None:
        raise jobs.JobError("dataset 'x' has no LYM patches")

    failed = _job()
    assert jobs.job_run(job_id=str(failed.pk), worker="w", body=bad_input) == "failed"
    failed.refresh_from_db()
    assert failed.error == "dataset 'x' has no LYM patches"

    def crash(job: Job, ctx: jobs.JobContext) -> None:
        raise ZeroDivisionError("boom")

    crashed = _job()
    jobs.job_run(job_id=str(crashed.pk), worker="w", body=crash)
    crashed.refresh_from_db()
    assert crashed.state == Job.State.FAILED and "ZeroDivisionError: boom" in crashed.error

    def cancelled_midway(job: Job, ctx: jobs.JobContext) -> None:
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        ctx.progress(0.5, force=True)
        ctx.raise_if_cancelled()

    stopped = _job()
    assert jobs.job_run(job_id=str(stopped.pk), worker="w", body=cancelled_midway) == "cancelled"


def test_progress_is_written_for_pages(manager_client: Client) -> None:
    job = _job(state=Job.State.RUNNING, heartbeat_at=timezone.now())
    services.job_report(job_id=job.pk, progress=0.25, message="24 of 96 files", detail={"done": 24})
    status = manager_client.get(reverse("job_status", args=[job.pk])).json()
    assert status["progress"] == 0.25 and status["message"] == "24 of 96 files" and not status["ended"]
    page = manager_client.get(reverse("job_detail", args=[job.pk]))
    assert page.status_code == 200 and b"data-job-status-url" in page.content


def test_job_pages_are_for_study_managers(expert_client: Client) -> None:
    job = _job()
    assert expert_client.get(reverse("job_status", args=[job.pk])).status_code == 403
    assert expert_client.post(reverse("job_cancel", args=[job.pk])).status_code == 403


def test_healthz_reports_database_and_broker(client: Client) -> None:
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["database"]["ok"] and body["broker"]["ok"]


def test_unreachable_broker_is_reported() -> None:
    ok, info = selectors.health_broker(url="redis://127.0.0.1:1/0", timeout_s=1)
    assert not ok and info


def test_cancelling_a_queued_import_removes_the_uploaded_archive(
    settings: Any, manager_client: Client
) -> None:
    import io
    import zipfile

    from django.core.files.storage import default_storage

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("LYM/LYM-1.png", b"not read: the job never runs")
    buffer.seek(0)
    buffer.name = "upload.zip"
    response = manager_client.post(
        reverse("gan:dataset_import"), {"archive": buffer, "name": "never", "classes": ["LYM"]}
    )
    assert response.status_code == 302
    job = Job.objects.get(kind="import")
    # The upload is kept in storage (a worker on another host fetches it from there), owned by the job.
    (upload,) = job.params["owned_stored_files"]
    assert upload.startswith("uploads/") and default_storage.exists(upload)
    services.job_cancel(job=job)
    assert job.state == Job.State.CANCELLED and not default_storage.exists(upload)


def test_a_job_never_removes_files_outside_the_data_folder(tmp_path: Any, settings: Any) -> None:
    outside = tmp_path / "keep.zip"
    outside.write_bytes(b"x")
    settings.DATA_DIR = tmp_path / "data"
    job = Job.objects.create(
        kind="import", task_name="gan.dataset_import", params={"owned_files": [str(outside)]}
    )
    services.job_cancel(job=job)
    assert outside.exists()
