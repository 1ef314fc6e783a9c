"""Celery tasks of the gan app: each runs its service's job body (`core.jobs.JobKind.task`)."""

from __future__ import annotations

from gan import jobs, services

dataset_import_task = jobs.DATASET_IMPORT.task(services.dataset_import_job)
training_run_task = jobs.TRAINING.task(services.training_run_job)
sampling_run_task = jobs.SAMPLING.task(services.sampling_run_job)
