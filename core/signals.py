"""The worker's recovery loop (jobs orphaned by a dead worker are re-queued by a living one), and the
study managers' permissions kept in step with the models after each migrate."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import worker_ready
from django.conf import settings
from django.db import close_old_connections
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from core.roles import MANAGED_APPS
from core.selectors import broker_queue_size
from core.services import jobs_recover_orphans, jobs_resend_lost, study_managers_group

logger = logging.getLogger(__name__)


def _recovery_loop(stop: threading.Event) -> None:
    interval = max(2.0, settings.JOB_HEARTBEAT_TIMEOUT_S / 2)
    while True:
        try:
            close_old_connections()
            jobs_recover_orphans()
            jobs_resend_lost(queue_size=lambda queue: broker_queue_size(queue=queue))
        except Exception:  # keep looping: the database may be restarting
            logger.exception("orphaned-job recovery failed")
        if stop.wait(interval):
            return


@worker_ready.connect
def start_recovery(**_: Any) -> None:
    threading.Thread(
        target=_recovery_loop, args=(threading.Event(),), daemon=True, name="job-recovery"
    ).start()


@receiver(post_migrate)
def _study_managers_group(sender: Any, **kwargs: Any) -> None:
    """After every migrate (which is when Django creates the permissions of new models), the study
    managers' group gets the permissions of the project's models, new ones included."""
    # Once per migrate, after the last of the project's apps (INSTALLED_APPS order), whose post_migrate
    # comes after the permissions of every earlier app have been created.
    if getattr(sender, "name", "") == MANAGED_APPS[-1]:
        study_managers_group()
