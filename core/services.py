"""Writes of the core app: users and background jobs."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from config.celery import app
from core.accounts import login_name
from core.models import Job, LoginFailure
from core.roles import EXPERTS_GROUP, MANAGED_APPS, MANAGERS_GROUP, UserLike, signed_in

logger = logging.getLogger(__name__)

ROLES = ("expert", "manager", "administrator")


def user_create(
    *, username: str, role: str, password: str | None = None, email: str = "", validate: bool = True
) -> tuple[AbstractUser, str]:
    """Create an expert or a study manager; returns the user and the password it was given."""
    if role not in ROLES:
        raise ValidationError(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
    username = login_name(username)
    if not username:
        raise ValidationError("A user name is required.")
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValidationError(f"A user named {username!r} already exists.")
    password = password or secrets.token_urlsafe(12)
    # Study managers are staff (the admin) with their group's permissions; only administrators are
    # superusers (they manage accounts too).
    user = User(
        username=username,
        email=email,
        is_staff=role in ("manager", "administrator"),
        is_superuser=role == "administrator",
    )
    if validate:
        validate_password(password, user)
    user.set_password(password)
    with transaction.atomic():
        user.save()
        if role == "expert":
            group, _ = Group.objects.get_or_create(name=EXPERTS_GROUP)
            user.groups.add(group)
        elif role == "manager":
            user.groups.add(study_managers_group())
    return user, password


def study_managers_group() -> Group:
    """The study managers' group with every permission on the project's own models (the admin's
    read-only models refuse changes whatever the permission), and none on accounts."""
    group, _ = Group.objects.get_or_create(name=MANAGERS_GROUP)
    group.permissions.set(Permission.objects.filter(content_type__app_label__in=MANAGED_APPS))
    return group


def job_create(
    *,
    kind: str,
    task_name: str,
    params: dict[str, Any] | None = None,
    title: str = "",
    queue: str = Job.Queue.DEFAULT,
    created_by: UserLike | None = None,
    enqueue: bool = True,
) -> Job:
    """Create a job and enqueue its task once the surrounding transaction commits.

    `enqueue=False` is for jobs that a management command runs itself, in the foreground.
    """
    job = Job.objects.create(
        kind=kind,
        task_name=task_name,
        params=params or {},
        title=title,
        queue=queue,
        created_by=signed_in(created_by),
        enqueued_at=timezone.now() if enqueue else None,
    )
    if enqueue:
        job_enqueue_on_commit(job=job)
    return job


def job_enqueue_on_commit(*, job: Job) -> None:
    job_id, task_name, queue = str(job.id), job.task_name, job.queue
    # A worker must never see a job id whose row is not committed yet.
    transaction.on_commit(lambda: job_publish(job_id=job_id, task_name=task_name, queue=queue))


def job_publish(*, job_id: str, task_name: str, queue: str) -> bool:
    """Hand a queued job's message to the broker; False when the broker cannot be reached.

    The job then stays queued and says so, and the workers' recovery loop sends it again once the
    broker is back (`jobs_resend_lost`): the page that started it answers, and nothing is lost.
    """
    try:
        app.send_task(task_name, kwargs={"job_id": job_id}, queue=queue)
    except (OperationalError, OSError) as exc:
        logger.warning("job %s could not be sent to the broker: %s", job_id, exc)
        Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(
            message="Waiting for the job queue (the broker cannot be reached): it starts once it is back."
        )
        return False
    return True


def job_cancel(*, job: Job) -> Job:
    """Ask a job to stop; a queued job is cancelled at once, a running one at its next check."""
    now = timezone.now()
    if Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(
        state=Job.State.CANCELLED,
        cancel_requested=True,
        finished_at=now,
        message="Cancelled before it started.",
    ):
        job.refresh_from_db()
        job_release_files(job=job)  # its body will never run to remove them
    else:
        Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    return job


def job_release_files(*, job: Job) -> None:
    """Remove the files a job owns (`params["owned_stored_files"]` in storage, e.g. an uploaded archive;
    `params["owned_files"]` on disk) once it has no more use for them. Only files under the data folder
    are ever removed from disk."""
    for stored in job.params.get("owned_stored_files", []):  # in storage (an upload, e.g.)
        default_storage.delete(stored)
    data = Path(settings.DATA_DIR).resolve()
    for name in job.params.get("owned_files", []):
        path = Path(name).resolve()
        if data in path.parents:
            path.unlink(missing_ok=True)
        else:
            logger.warning("job %s owns %s, outside the data folder: left in place", job.pk, path)


def job_claim(*, job_id: str, worker: str) -> Job | None:
    """Take a job for this worker, or None when it is not ours to run.

    A job can be claimed when it is queued, or when it is marked running but its heartbeat is
    stale (its worker died). A second delivery of the same message while the first is alive
    finds a fresh heartbeat and is skipped, so a job never runs twice at once.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_S)
    claimable = Q(state=Job.State.QUEUED) | Q(state=Job.State.RUNNING, heartbeat_at__lt=stale)
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(claimable, pk=job_id).first()
        if job is None:
            return None
        job.state = Job.State.RUNNING
        job.attempts += 1
        job.worker = worker
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.save(update_fields=["state", "attempts", "worker", "started_at", "heartbeat_at"])
    return job


def job_report(
    *,
    job_id: Any,
    progress: float | None = None,
    message: str | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Write progress and a heartbeat; returns whether cancellation was requested."""
    fields: dict[str, Any] = {"heartbeat_at": timezone.now()}
    if progress is not None:
        fields["progress"] = max(0.0, min(1.0, float(progress)))
    if message is not None:
        fields["message"] = message[:500]
    if detail is not None:
        fields["detail"] = detail
    Job.objects.filter(pk=job_id, state=Job.State.RUNNING).update(**fields)
    return bool(Job.objects.filter(pk=job_id, cancel_requested=True).exists())


def job_finish(*, job_id: Any, result: dict[str, Any] | None = None, message: str = "") -> None:
    Job.objects.filter(pk=job_id, state=Job.State.RUNNING).update(
        state=Job.State.FINISHED,
        progress=1.0,
        result=result,
        message=message[:500],
        finished_at=timezone.now(),
    )


def job_fail(*, job_id: Any, error: str) -> None:
    Job.objects.filter(pk=job_id).exclude(state__in=Job.ENDED_STATES).update(
        state=Job.State.FAILED,
        error=error,
        message=error.splitlines()[0][:500] if error else "",
        finished_at=timezone.now(),
    )


def job_mark_cancelled(
    *, job_id: Any, result: dict[str, Any] | None = None, message: str = "Cancelled."
) -> None:
    Job.objects.filter(pk=job_id).exclude(state__in=Job.ENDED_STATES).update(
        state=Job.State.CANCELLED, result=result, message=message[:500], finished_at=timezone.now()
    )


def jobs_recover_orphans() -> list[str]:
    """Re-enqueue running jobs whose worker stopped sending heartbeats (it died)."""
    stale = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_S)
    recovered: list[str] = []
    with transaction.atomic():
        for job in Job.objects.select_for_update(skip_locked=True).filter(
            state=Job.State.RUNNING, heartbeat_at__lt=stale
        ):
            # Back to queued first: of two workers recovering at once, one wins the row.
            job.state = Job.State.QUEUED
            job.message = "Re-queued: its worker stopped responding."
            job.enqueued_at = timezone.now()
            job.save(update_fields=["state", "message", "enqueued_at"])
            job_enqueue_on_commit(job=job)
            recovered.append(str(job.id))
    if recovered:
        logger.warning("re-queued %d orphaned job(s): %s", len(recovered), ", ".join(recovered))
    return recovered


def jobs_resend_lost(*, queue_size: Callable[[str], int | None]) -> list[str]:
    """Send again the messages of queued jobs that their broker queue no longer holds.

    A broker restarted without persistence (Redis with no AOF or snapshot, say) loses the messages
    it held, while the jobs' rows stay queued. A queue holding fewer messages than it has queued
    jobs has lost some: the jobs waiting longest beyond JOB_RESEND_AFTER_S are sent again. A message
    sent twice does no harm, since `job_claim` runs a job once. `queue_size(queue)` counts a
    queue's messages, or gives None when the broker cannot be asked (nothing is sent then).
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_RESEND_AFTER_S)
    queued = Job.objects.filter(state=Job.State.QUEUED, enqueued_at__isnull=False)
    # The broker is asked before any row is locked: it may be slow to answer, or down.
    sizes = {
        queue: queue_size(queue)
        for queue in sorted(set(queued.filter(enqueued_at__lt=cutoff).values_list("queue", flat=True)))
    }
    resent: list[str] = []
    with transaction.atomic():
        waiting = list(queued.select_for_update(skip_locked=True).order_by("enqueued_at")) if sizes else []
        overdue = [job for job in waiting if job.enqueued_at is not None and job.enqueued_at < cutoff]
        for queue, size in sizes.items():
            queued_here = sum(job.queue == queue for job in waiting)
            if size is None or size >= queued_here:
                continue
            for job in [job for job in overdue if job.queue == queue][: queued_here - size]:
                job.enqueued_at = now
                job.message = "Sent to the job queue again: the broker had lost its message."
                job.save(update_fields=["enqueued_at", "message"])
                job_enqueue_on_commit(job=job)
                resent.append(str(job.id))
    if resent:
        logger.warning(
            "re-sent %d job(s) whose message the broker had lost: %s", len(resent), ", ".join(resent)
        )
    return resent


def login_delay_s(failures: int) -> int:
    """Seconds an account waits after its last failed log-in, given its failures in the window.

    The first `LOGIN_FREE_FAILURES` cost nothing (typos); each one after doubles the wait, up to
    `LOGIN_DELAY_MAX_S`. Guessing is slowed to one try per LOGIN_DELAY_MAX_S an account, while ten
    wrong guesses by someone else keep its reader out for that long at most, not for the whole window.
    """
    over = failures - settings.LOGIN_FREE_FAILURES
    return 0 if over < 0 else int(min(2 ** (over + 1), settings.LOGIN_DELAY_MAX_S))


def login_blocked_for(*, username: str, address: str | None) -> int:
    """Seconds until a login for this user name or from this address may be tried again (0: now).

    The name is counted in its one spelling (`core.accounts.login_name`). Per account: a growing
    delay (`login_delay_s`). Per client address: failures for `LOGIN_FAILURE_LIMIT` different names in
    the window, then none until the oldest of them leaves the window (an address guessing across names).
    Written here rather than with django-axes: its authentication backend needs the request in every
    authenticate() call, which management commands and the test client's login() do not pass.
    """
    now = timezone.now()
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_S)
    recent = LoginFailure.objects.filter(at__gte=now - window).order_by("-at")
    waits = [0]
    for_name = list(recent.filter(username=login_name(username)).values_list("at", flat=True)[:64])
    if for_name:
        waits.append(
            int((for_name[0] + timedelta(seconds=login_delay_s(len(for_name))) - now).total_seconds())
        )
    if address:
        # Per address: failures for LOGIN_FAILURE_LIMIT different names (guessing across accounts).
        # Guesses at one name are that account's delay only, so that a guesser who shares an address
        # with the reader (one hospital's NAT, one lab) cannot lock the reader out through it.
        latest: dict[str, Any] = {}
        for name, at in recent.filter(address=address).values_list("username", "at"):
            latest.setdefault(name, at)  # newest first
        if len(latest) >= settings.LOGIN_FAILURE_LIMIT:
            # The limit-th most recent name frees a try when its last failure leaves the window.
            oldest_counted = sorted(latest.values(), reverse=True)[settings.LOGIN_FAILURE_LIMIT - 1]
            waits.append(max(1, int((oldest_counted + window - now).total_seconds())))
    return max(waits)


def login_failure_record(*, username: str, address: str | None) -> None:
    LoginFailure.objects.create(username=login_name(username)[:150], address=address)
    LoginFailure.objects.filter(at__lt=timezone.now() - timedelta(days=1)).delete()
