"""Running a job inside a Celery task: claim it, keep its heartbeat, report progress, record the end.

Task bodies stay one line: `job_run(job_id=..., worker=..., body=some_service)`. The body is a plain
function of (job, context) that returns a JSON-able result; it reports progress through the context
and raises `JobError` for failures whose message should reach the user as it is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections, connection, transaction

from core import services
from core.models import Job, JobRecord
from core.roles import UserLike

RecordT = TypeVar("RecordT", bound=JobRecord)

logger = logging.getLogger(__name__)


class JobError(Exception):
    """A failure whose message is meant for the user (bad input, missing weights, ...)."""


class JobCancelled(Exception):
    """Raised by a job body that noticed a cancel request and stopped."""


class JobContext:
    """What a job body sees: progress reporting and the cancel flag, throttled for the database."""

    def __init__(
        self,
        job: Job,
        *,
        min_interval_s: float = 0.5,
        on_progress: Callable[[float, str | None], None] | None = None,
    ) -> None:
        self.job = job
        self.min_interval_s = min_interval_s
        self.on_progress = on_progress  # sees every report, unthrottled (a terminal's progress bar)
        self._last_write = 0.0
        self._cancel_requested = False

    def progress(
        self,
        fraction: float,
        message: str | None = None,
        detail: dict[str, Any] | None = None,
        *,
        force: bool = False,
    ) -> None:
        if self.on_progress is not None:
            self.on_progress(fraction, message)
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval_s:
            return
        self._last_write = now
        self._cancel_requested = services.job_report(
            job_id=self.job.pk, progress=fraction, message=message, detail=detail
        )

    def should_abort(self) -> bool:
        """Whether a cancel was requested, as of the last progress write."""
        return self._cancel_requested

    def raise_if_cancelled(self) -> None:
        if self._cancel_requested:
            raise JobCancelled


class _Heartbeat(threading.Thread):
    """Keeps the job's heartbeat fresh while its body is busy between progress reports."""

    def __init__(self, job_id: Any, interval_s: float) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.job_id = job_id
        self.interval_s = interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval_s):
                try:
                    services.job_report(job_id=self.job_id)
                except Exception:  # a database hiccup must not kill the job; the next beat retries
                    logger.exception("heartbeat of job %s failed", self.job_id)
                    close_old_connections()
        finally:
            connection.close()


JobBody = Callable[[Job, JobContext], dict[str, Any] | None]


@dataclass(frozen=True)
class JobKind:
    """One kind of background work, declared once: what the job rows say (`kind`), the Celery task that
    runs it (`task_name`) and its queue. `task(body)` makes that task; `job_start` creates
    a job of this kind with its record. A new GPU job is a record model, a body, a `JobKind(...)`, a
    start service calling `job_start`, and one `task(...)` line in the app's tasks module."""

    kind: str
    task_name: str
    queue: str = Job.Queue.DEFAULT

    def task(self, body: JobBody) -> Any:
        """The Celery task that runs `body` for a job of this kind (claimed once, heartbeat, end state)."""
        options = gpu_task_options() if self.queue == Job.Queue.GPU else {"bind": True}

        def run(task: Any, *, job_id: str) -> str:
            return job_run(job_id=job_id, worker=task.request.hostname or "", body=body)

        run.__name__ = run.__qualname__ = self.task_name.replace(".", "_")
        return shared_task(name=self.task_name, **options)(run)


def job_start(
    *,
    kind: JobKind,
    record: RecordT,
    title: str,
    created_by: UserLike | None = None,
    device: str = "auto",
    enqueue: bool = True,
) -> RecordT:
    """Create a job of `kind` and save `record`, the unsaved row that describes it (a run, a report, ...),
    in one transaction; the task is sent once both are committed (`enqueue=False`: a command runs it).
    The job runs on `device` ("auto", "cpu", "cuda", "cuda:1"...), its only parameter."""
    with transaction.atomic():
        record.job = services.job_create(
            kind=kind.kind,
            task_name=kind.task_name,
            queue=kind.queue,
            title=title,
            params={"device": device},
            created_by=created_by,
            enqueue=enqueue,
        )
        record.created_by = record.job.created_by
        record.save(force_insert=True)
        return record


def gpu_task_options() -> dict[str, Any]:
    """Options of every long task: its own queue, acknowledged late and re-queued if the worker dies."""
    return {
        "bind": True,
        "queue": "gpu",
        "acks_late": True,
        "reject_on_worker_lost": True,
        "soft_time_limit": settings.GPU_TASK_SOFT_TIME_LIMIT,
        "time_limit": settings.GPU_TASK_TIME_LIMIT,
    }


def job_run(
    *,
    job_id: str,
    worker: str,
    body: JobBody,
    on_progress: Callable[[float, str | None], None] | None = None,
) -> str:
    """Run `body` for the job if this worker can claim it; returns the job's final state."""
    job = services.job_claim(job_id=job_id, worker=worker)
    if job is None:
        current = Job.objects.filter(pk=job_id).values_list("state", flat=True).first()
        logger.info("job %s not claimed (state %s): skipped", job_id, current)
        return str(current)
    heartbeat = _Heartbeat(job.pk, max(1.0, settings.JOB_HEARTBEAT_TIMEOUT_S / 4))
    heartbeat.start()
    context = JobContext(job, on_progress=on_progress)
    try:
        result = body(job, context)
    except JobCancelled:
        services.job_mark_cancelled(job_id=job.pk)
    except JobError as exc:
        services.job_fail(job_id=job.pk, error=str(exc))
    except SoftTimeLimitExceeded:
        services.job_fail(job_id=job.pk, error="The job ran past its time limit and was stopped.")
    except Exception as exc:
        logger.exception("job %s failed", job.pk)
        services.job_fail(job_id=job.pk, error=f"Unexpected error: {type(exc).__name__}: {exc}")
    else:
        services.job_finish(job_id=job.pk, result=result)
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=5)
    return str(Job.objects.values_list("state", flat=True).get(pk=job.pk))
