from __future__ import annotations

import os
import socket
from typing import Any

from core.jobs import JobContext, JobKind
from core.models import Job


def _ping_body(job: Job, context: JobContext) -> dict[str, Any]:
    context.progress(0.5, "pong", force=True)
    return {"echo": job.params.get("echo"), "pid": os.getpid(), "host": socket.gethostname()}


# A job that proves the round trip: broker, worker, database.
PING = JobKind("ping", "core.ping")
ping_task = PING.task(_ping_body)
