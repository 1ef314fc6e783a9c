"""A job context that also draws a progress bar, for jobs a command runs in the foreground."""

from __future__ import annotations

import socket
from typing import Any

from django.core.management.base import CommandError
from tqdm import tqdm

from core.jobs import JobError, job_run
from core.models import Job
from core.services import job_mark_cancelled


def run_in_foreground(*, job: Job, body: Any, unit: str) -> Job:
    """Run a job's body in this process, with a progress bar; Ctrl-C cancels the job."""
    bar = tqdm(total=1000, unit="‰", desc=unit, bar_format="{l_bar}{bar}| {postfix}")

    def draw(fraction: float, message: str | None) -> None:
        bar.update(int(fraction * 1000) - bar.n)
        if message:
            bar.set_postfix_str(message, refresh=False)

    try:
        job_run(job_id=str(job.pk), worker=f"cli@{socket.gethostname()}", body=body, on_progress=draw)
    except KeyboardInterrupt:
        # The user stopped it: the job ends here as cancelled, so that no worker's recovery loop takes
        # the stale heartbeat for a crash and resumes what the user meant to stop.
        job_mark_cancelled(job_id=job.pk, message="Stopped from the terminal (Ctrl-C).")
        raise CommandError("interrupted: the job is cancelled; its last checkpoint is kept") from None
    finally:
        bar.close()
    job.refresh_from_db()
    if job.state == Job.State.FAILED:
        raise CommandError(job.error)
    return job


__all__ = ["JobError", "run_in_foreground"]
