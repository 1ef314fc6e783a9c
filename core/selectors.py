from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import connection
from kombu.exceptions import ChannelError

from config.celery import app
from core.models import Job

logger = logging.getLogger(__name__)


def job_status(*, job: Job) -> dict[str, Any]:
    """What a page polls to show a job live."""
    return {
        "id": str(job.id),
        "kind": job.kind,
        "title": job.title,
        "state": job.state,
        "progress": job.progress,
        "message": job.message,
        "detail": job.detail,
        "result": job.result,
        "error": job.error,
        "ended": job.is_ended,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def jobs_recent(*, limit: int = 20) -> list[Job]:
    return list(Job.objects.order_by("-created_at")[:limit])


def health_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, connection.vendor
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


def health_broker(*, url: str | None = None, timeout_s: int = 2) -> tuple[bool, str]:
    try:
        with app.connection_for_write(url) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
            transport = (
                conn.transport_cls if isinstance(conn.transport_cls, str) else conn.transport.driver_type
            )
        if (url or settings.CELERY_BROKER_URL).startswith("filesystem://"):
            folder = settings.BROKER_FOLDER / "queue"
            if not folder.is_dir():
                return False, f"broker folder {folder} is missing"
        return True, str(transport)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


def broker_queue_size(*, queue: str, url: str | None = None, timeout_s: int = 2) -> int | None:
    """Messages waiting in a broker queue (not those a worker holds), or None when it cannot be asked."""
    try:
        with app.connection_for_write(url) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
            try:
                declared = conn.default_channel.queue_declare(queue=queue, passive=True)  # type: ignore[attr-defined]
                return int(declared.message_count)
            except ChannelError:  # a queue that holds nothing may not exist at all (Redis)
                return 0
    except Exception as exc:
        logger.warning(
            "could not count the messages in broker queue %r: %s: %s", queue, type(exc).__name__, exc
        )
        return None
