from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from core.jobs import job_run
from gan import services


@shared_task(name="gan.dataset_import", bind=True)
def dataset_import_task(self: Any, *, job_id: str) -> str:
    return job_run(job_id=job_id, worker=self.request.hostname or "", body=services.dataset_import_job)


# Long tasks: acknowledged late and re-queued if the worker dies; one at a time per gpu worker.
_GPU_TASK: dict[str, Any] = {
    "bind": True,
    "queue": "gpu",
    "acks_late": True,
    "reject_on_worker_lost": True,
    "soft_time_limit": settings.GPU_TASK_SOFT_TIME_LIMIT,
    "time_limit": settings.GPU_TASK_TIME_LIMIT,
}


@shared_task(name="gan.training_run", **_GPU_TASK)
def training_run_task(self: Any, *, job_id: str) -> str:
    return job_run(job_id=job_id, worker=self.request.hostname or "", body=services.training_run_job)


@shared_task(name="gan.sampling_run", **_GPU_TASK)
def sampling_run_task(self: Any, *, job_id: str) -> str:
    return job_run(job_id=job_id, worker=self.request.hostname or "", body=services.sampling_run_job)
