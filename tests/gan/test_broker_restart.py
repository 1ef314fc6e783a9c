"""Redis restarted (killed, then started empty) during a sampling run, with a real worker.

The run in progress completes; the run that waited in the lost queue, and one started while the
broker was down, are sent again by the worker's recovery loop and complete; no patch is stored twice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from core.models import Job
from gan.models import Checkpoint, SamplingRun
from gan.services import sampling as sampling_services
from tests.conftest import REPO, WorkerProcess, _database_url
from tests.servers import PATIENCE_S, PrivateRedis

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

RESEND_AFTER_S = 2


@pytest.fixture
def worker_env(redis_server: PrivateRedis, media_root: Path) -> dict[str, str]:
    return dict(os.environ) | {
        "DATABASE_URL": _database_url(connection.settings_dict),
        "HISTOTURING_DATA_DIR": str(django_settings.DATA_DIR),
        "MEDIA_ROOT": str(media_root),
        "CELERY_BROKER_URL": redis_server.url,
        "JOB_HEARTBEAT_TIMEOUT_S": "6",
        "JOB_RESEND_AFTER_S": str(RESEND_AFTER_S),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def private_worker(worker_env: dict[str, str], tmp_path: Path) -> Any:
    worker = WorkerProcess(tmp_path / "worker.log", worker_env)
    worker.start()
    yield worker
    worker.stop()


def _send(run: SamplingRun, broker_url: str) -> None:
    """What `job_publish` does, to this test's own broker."""
    from config.celery import app

    Job.objects.filter(pk=run.job_id).update(enqueued_at=timezone.now())
    with app.connection_for_write(broker_url) as conn:
        app.send_task(
            "gan.sampling_run", kwargs={"job_id": str(run.job_id)}, queue=Job.Queue.GPU, connection=conn
        )


def _start_in_a_process(env: dict[str, str], checkpoint: Checkpoint, count: int, seed: int) -> str:
    """Start a sampling run as a page would, in a process whose broker is the (stopped) private one."""
    code = (
        "import django; django.setup()\n"
        "from gan.models import Checkpoint\n"
        "from gan.services.sampling import sampling_run_start\n"
        f"run = sampling_run_start(checkpoint=Checkpoint.objects.get(pk={checkpoint.pk}), "
        f"tissue_class='LYM', count={count}, seed={seed})\n"
        "print(run.pk)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env | {"DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_sampling_survives_a_redis_restart_and_lost_messages_are_sent_again(
    sampling_run: SamplingRun,
    redis_server: PrivateRedis,
    worker_env: dict[str, str],
    private_worker: WorkerProcess,
    wait_for_job: Any,
) -> None:
    checkpoint = sampling_run.checkpoint
    running = sampling_services.sampling_run_start(
        checkpoint=checkpoint, tissue_class="LYM", count=2000, seed=1000, enqueue=False
    )
    waiting = sampling_services.sampling_run_start(
        checkpoint=checkpoint, tissue_class="LYM", count=40, seed=5000, enqueue=False
    )
    _send(running, redis_server.url)
    _send(waiting, redis_server.url)  # one worker process: this one waits in Redis behind the first
    deadline = time.monotonic() + PATIENCE_S
    while running.patches.count() < 64:
        assert time.monotonic() < deadline, private_worker.log()[-3000:]
        time.sleep(0.05)

    redis_server.kill()
    assert Job.objects.get(pk=running.job_id).state == Job.State.RUNNING, "the run ended before the restart"
    # A run started while the broker is down: the page's request succeeds, the job waits and says why.
    started_meanwhile = SamplingRun.objects.get(
        pk=_start_in_a_process(worker_env, checkpoint, count=30, seed=9000)
    )
    job = Job.objects.get(pk=started_meanwhile.job_id)
    assert job.state == Job.State.QUEUED and "broker cannot be reached" in job.message
    redis_server.start()  # empty: the waiting run's message is gone

    for run, count in ((running, 2000), (waiting, 40), (started_meanwhile, 30)):
        job = wait_for_job(run.job_id, worker=private_worker, timeout_s=PATIENCE_S)
        assert job.state == Job.State.FINISHED, (job.message, job.error)
        assert job.attempts == 1  # never run twice, though sent twice
        seeds = list(run.patches.values_list("seed", flat=True))
        assert sorted(seeds) == list(range(run.seed, run.seed + count))
    # Both lost messages were sent again (perhaps in two rounds, perhaps one more than once: a message
    # held by the worker while it is busy does not count as in the queue; a duplicate runs nothing).
    log = private_worker.log()
    resent = sum(int(n) for n in re.findall(r"re-sent (\d+) job\(s\) whose message the broker had lost", log))
    assert resent >= 2, log[-4000:]
