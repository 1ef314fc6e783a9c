from __future__ import annotations

from typing import Any

from celery import shared_task

from core.jobs import gpu_task_options, job_run
from gan import services


@shared_task(name="gan.dataset_import", bind=True)
def dataset_import_task(self: Any, *, job_id: str) -> str:
    return job_run(job_id=job_id, worker=self.request.hostname or "", body=services.dataset_import_job)


@shared_task(name="gan.training_run", **gpu_task_options())
def training_run_task(self: Any, *, job_id: str) -> str:
    return job_run(job_id=job_id, worker=self.request.hostname or "", body=services.training_run_job)


@shared_task(name="gan.sampling_run", **gpu_task_options())
def sampling_run_task(self: Any, *, job_id: str) -> str:
    return job_run(job_id=job_id, worker=self.request.hostname or "", body=services.sampling_run_job)
