from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Job(models.Model):
    """One unit of background work (an import, a training run, a report) and what pages show of it.

    Celery carries only the job's id; state, progress and results live here so that any web
    process can show them and so that a job survives the loss of the worker that ran it.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        CANCELLED = "cancelled"
        FAILED = "failed"
        FINISHED = "finished"

    class Queue(models.TextChoices):
        DEFAULT = "default"
        GPU = "gpu"

    ENDED_STATES = (State.CANCELLED, State.FAILED, State.FINISHED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=200, blank=True)
    task_name = models.CharField(max_length=200)
    queue = models.CharField(max_length=20, choices=Queue.choices, default=Queue.DEFAULT)
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When its message was last handed to the broker (null: run in the foreground by a command).
    enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.state})"

    @property
    def is_ended(self) -> bool:
        return self.state in self.ENDED_STATES


class LoginFailure(models.Model):
    """A failed login, kept for the rate limit (per user name and per client address)."""

    username = models.CharField(max_length=150, db_index=True)
    address = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"failed log-in for {self.username!r} from {self.address} at {self.at}"


def measured() -> models.FloatField[float | None, float | None]:
    """A figure a job measures: empty (null) until it has."""
    return models.FloatField(null=True, blank=True)


class JobRecord(models.Model):
    """What every job-backed record has (a training run, an FID report, ...): its job, who asked, when.

    Created with its job by `core.jobs.job_start`, in one transaction.
    """

    job = models.OneToOneField(Job, on_delete=models.PROTECT, related_name="%(class)s")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]
