"""Celery tasks of the evaluation app: each runs its service's job body (`core.jobs.JobKind.task`)."""

from __future__ import annotations

from evaluation import jobs, services

fid_report_task = jobs.FID_REPORT.task(services.fid_report_job)
classifier_train_task = jobs.CLASSIFIER_TRAIN.task(services.classifier_train_then_check)
augmentation_task = jobs.AUGMENTATION.task(services.augmentation_job)
copying_check_task = jobs.COPYING.task(services.copying_check_job)
class_check_task = jobs.CLASS_CHECK.task(services.class_check_job)
