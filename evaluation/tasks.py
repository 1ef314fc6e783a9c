from __future__ import annotations

from typing import Any

from celery import shared_task

from core.jobs import gpu_task_options, job_run
from evaluation import services


@shared_task(name="evaluation.fid_report", **gpu_task_options())
def fid_report_task(self: Any, *, job_id: str) -> str:
    return job_run(job_id=job_id, worker=self.request.hostname or "", body=services.fid_report_job)


@shared_task(name="evaluation.classifier_train", **gpu_task_options())
def classifier_train_task(self: Any, *, job_id: str) -> str:
    return job_run(job_id=job_id, worker=self.request.hostname or "", body=services.classifier_train_job)


@shared_task(name="evaluation.augmentation", **gpu_task_options())
def augmentation_task(self: Any, *, job_id: str) -> str:
    return job_run(job_id=job_id, worker=self.request.hostname or "", body=services.augmentation_job)
