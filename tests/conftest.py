from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.test import Client

from core import services as core_services
from tests.servers import PATIENCE_S

pytest_plugins = ["tests.gan.fixtures", "tests.turing.fixtures"]


def pytest_itemcollected(item: pytest.Item) -> None:
    """Under pytest-xdist (`-n`, as scripts/test runs), which process runs what: every test that starts
    real processes (the session's Celery worker, gunicorn, Chromium, servers of its own) in one process,
    one after another, since two Celery workers on one broker would take each other's tasks for another
    test database; every other test file whole in one process, so that its module fixtures are made once.
    (Marked as each test is collected: pytest-xdist reads the marks in its own collection hook.)"""
    processes = item.get_closest_marker("worker") or item.get_closest_marker("browser")
    item.add_marker(pytest.mark.xdist_group("processes" if processes else item.nodeid.split("::")[0]))


REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "demo" / "data"
TIFF_SAMPLE = REPO / "tests" / "data" / "crc-he-sample"


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hasher() -> Iterator[None]:
    """Tests make many users: PBKDF2's million iterations cost about half a second each, MD5 nothing.
    Passwords here protect nothing; production keeps Django's default hashers."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(scope="session")
def sample_root() -> Path:
    """The 117 real patches of the demo (128 px PNG derivatives, laid out as the datasets are)."""
    return DEMO_DATA


@pytest.fixture(scope="session")
def tiff_root() -> Path:
    """A handful of the real 224 px TIFFs, for the tests of that file format."""
    return TIFF_SAMPLE


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    """A media folder of the test's own, and a worker cache of its own beside it."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.WORKER_CACHE_DIR = tmp_path / "cache"
    return Path(settings.MEDIA_ROOT)


def _user(role: str, username: str) -> Any:
    """A fixture: a user of `role` (validate=False: the test password is not checked for strength)."""

    @pytest.fixture
    def make(db: None) -> Any:
        user, _ = core_services.user_create(
            username=username, role=role, password="a-long-test-pass-1", validate=False
        )
        return user

    return make


def _signed_in(user_fixture: str) -> Any:
    """A fixture: a test client signed in as the user of the fixture named `user_fixture`."""

    @pytest.fixture
    def make(request: pytest.FixtureRequest) -> Client:
        client = Client()
        client.force_login(request.getfixturevalue(user_fixture))
        return client

    return make


expert = _user("expert", "expert-a")
other_expert = _user("expert", "expert-b")
manager = _user("manager", "manager-a")
administrator = _user("administrator", "admin-a")
expert_client = _signed_in("expert")
manager_client = _signed_in("manager")


# --- The real Celery worker ---------------------------------------------------------------------


def _database_url(db: dict[str, Any]) -> str:
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "")
    password = quote(db.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{db.get('HOST') or ''}:{db.get('PORT') or 5432}/{db['NAME']}"


def _purge_queues() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in ("default", "gpu"):
            with contextlib.suppress(Exception):  # an unknown queue is already empty
                conn.default_channel.queue_purge(queue)


class WorkerProcess:
    def __init__(self, log_path: Path, env: dict[str, str], name: str = "") -> None:
        self.log_path = log_path
        self.env = env
        self.name = name or f"test-{os.getpid()}@%h"  # the worker's node name (-n)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout_s: float = PATIENCE_S) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "default,gpu",
                "-c",
                "1",
                "-n",
                self.name,
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        start = self.log_path.stat().st_size if self.log_path.exists() else 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Celery worker exited early:\n{self.log_path.read_text()[-4000:]}")
            with self.log_path.open("rb") as handle:
                handle.seek(start)
                if b" ready." in handle.read():
                    return
            time.sleep(0.2)
        raise RuntimeError(
            f"the Celery worker did not start in {timeout_s} s:\n{self.log_path.read_text()[-4000:]}"
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # A pool process that outlived its parent would keep a connection to the test database, which
        # could then not be dropped at the end of the session.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the worker and its pool children, as a crash or an OOM kill would."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: Any
) -> Iterator[WorkerProcess]:
    """One real worker process for the session, on the test database and the configured broker."""
    from django.db import connection

    with django_db_blocker.unblock():
        env = dict(os.environ)
        env["DATABASE_URL"] = _database_url(connection.settings_dict)
        env["HISTOTURING_DATA_DIR"] = str(django_settings.DATA_DIR)
        env["MEDIA_ROOT"] = str(django_settings.MEDIA_ROOT)
        env["PYTHONUNBUFFERED"] = "1"
        # Short heartbeats so that a killed worker's job is recovered within seconds in tests.
        env["JOB_HEARTBEAT_TIMEOUT_S"] = "6"
        _purge_queues()
    worker = WorkerProcess(tmp_path_factory.mktemp("worker") / "worker.log", env)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def wait_for_job() -> Callable[..., Any]:
    from core.models import Job

    def wait(job_id: Any, *, timeout_s: float = PATIENCE_S, worker: WorkerProcess | None = None) -> Job:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = Job.objects.get(pk=job_id)
            if job.is_ended:
                return job
            time.sleep(0.2)
        detail = worker.log()[-4000:] if worker else ""
        raise AssertionError(f"job {job_id} did not end in {timeout_s} s (state {job.state})\n{detail}")

    return wait
