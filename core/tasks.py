from __future__ import annotations

import os
import socket
from typing import Any

from celery import shared_task

from core.jobs import JobContext, job_run
from core.models import Job


def _ping_body(job: Job, context: JobContext) -> dict[str, Any]:
    context.progress(0.5, "pong", force=True)
    return {"echo": job.params.get("echo"), "pid": os.getpid(), "host": socket.gethostname()}


@shared_task(name="core.ping", bind=True)
def ping_task(self: Any, *, job_id: str) -> str:
    """A job that proves the round trip: broker, worker, database."""
    return job_run(job_id=job_id, worker=self.request.hostname or "", body=_ping_body)
