from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection

from core.models import Job


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
    from config.celery import app

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
