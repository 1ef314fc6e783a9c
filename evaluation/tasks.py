from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from core.jobs import job_run
from evaluation import services


@shared_task(
    name="evaluation.fid_report",
    bind=True,
    queue="gpu",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.GPU_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.GPU_TASK_TIME_LIMIT,
)
def fid_report_task(self: Any, *, job_id: str) -> str:
    return job_run(job_id=job_id, worker=self.request.hostname or "", body=services.fid_report_job)


@shared_task(
    name="evaluation.classifier_train",
    bind=True,
    queue="gpu",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.GPU_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.GPU_TASK_TIME_LIMIT,
)
def classifier_train_task(self: Any, *, job_id: str) -> str:
    return job_run(job_id=job_id, worker=self.request.hostname or "", body=services.classifier_train_job)


@shared_task(
    name="evaluation.augmentation",
    bind=True,
    queue="gpu",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.GPU_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.GPU_TASK_TIME_LIMIT,
)
def augmentation_task(self: Any, *, job_id: str) -> str:
    return job_run(job_id=job_id, worker=self.request.hostname or "", body=services.augmentation_job)
