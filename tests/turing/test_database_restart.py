"""PostgreSQL restarted (stopped at once, as in a crash, then started) while experts are answering.

The site runs on a PostgreSQL cluster of its own, so that the suite's database is not touched. The
site is not restarted: it answers 503 with a clear message while the database is away, and saves
answers again once it is back; every answer it acknowledged is stored, once.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from tests.servers import PATIENCE_S, PrivatePostgres, free_port, start_gunicorn, wait_until_serving

pytestmark = pytest.mark.worker  # a PostgreSQL cluster and gunicorn of its own
REPO = Path(__file__).resolve().parents[2]
READERS, ITEMS = 4, 200


@pytest.fixture
def postgres_server() -> Any:
    try:
        server = PrivatePostgres()
    except (FileNotFoundError, RuntimeError) as exc:
        pytest.skip(f"needs PostgreSQL's server programs: {exc}")
    try:
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE site")
        yield server
    finally:
        server.destroy()


def _call(port: int, method: str, path: str, cookie: str, body: dict | None = None) -> tuple[int, Any, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE_S)
    headers = {"Cookie": cookie, "X-CSRFToken": "c" * 32, "Content-Type": "application/json"}
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data), response.headers
    finally:
        conn.close()


class Readers:
    """Experts answering as fast as the site lets them; after a 503 they answer the same item again."""

    def __init__(self, port: int, study: int, readers: list[list[str]]) -> None:
        self.port, self.study, self.readers = port, study, readers
        self.acknowledged: list[tuple[str, str, str, float]] = []  # reader, token, label, when
        self.refusals: list[tuple[int, Any, Any]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._read, args=(r,)) for r in readers]

    def _read(self, reader: list[str]) -> None:
        name, cookie = reader
        try:
            status, upcoming, _ = _call(self.port, "GET", f"/api/studies/{self.study}/next", cookie)
            assert status == 200, upcoming
            label = "real"
            while not self.stop.is_set() and not upcoming["finished"]:
                token = upcoming["item"]["token"]
                status, body, headers = _call(
                    self.port,
                    "POST",
                    f"/api/studies/{self.study}/answers",
                    cookie,
                    {"token": token, "label": label},
                )
                if status in (200, 201) and body["saved"]:  # 200: a resent answer already stored
                    with self.lock:
                        self.acknowledged.append((name, token, label, time.monotonic()))
                    upcoming = body["next"]
                    label = secrets.choice(["real", "synthetic"])
                else:
                    with self.lock:
                        self.refusals.append((status, body, headers.get("Retry-After")))
                    time.sleep(0.05)
        except Exception as exc:  # a connection refused or reset: the site itself failed
            with self.lock:
                self.failures.append(f"{name}: {type(exc).__name__}: {exc}")

    def count_since(self, moment: float) -> dict[str, int]:
        with self.lock:
            return {
                r[0]: sum(1 for a in self.acknowledged if a[0] == r[0] and a[3] > moment)
                for r in self.readers
            }


def _gunicorn_processes(master: int, workers: int) -> set[int]:
    deadline = time.monotonic() + PATIENCE_S
    while len(children := psutil.Process(master).children()) < workers:
        assert time.monotonic() < deadline, f"gunicorn started {len(children)} of {workers} workers"
        time.sleep(0.05)
    return {master, *(child.pid for child in children)}


def test_the_site_recovers_from_a_postgres_restart_under_load(
    postgres_server: PrivatePostgres, tmp_path: Path
) -> None:
    env = dict(os.environ) | {
        "DATABASE_URL": postgres_server.url("site"),
        "HISTOTURING_DATA_DIR": str(tmp_path / "data"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    setup = subprocess.run(
        [sys.executable, "-m", "tests.turing.site_setup", "--readers", str(READERS), "--items", str(ITEMS)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
    )
    assert setup.returncode == 0, setup.stderr[-3000:]
    site = json.loads(setup.stdout.strip().splitlines()[-1])

    port = free_port()
    server = start_gunicorn(env, port=port, log_path=tmp_path / "gunicorn.log", cwd=REPO)
    readers = Readers(port, site["study"], site["readers"])
    try:
        wait_until_serving(port, process=server)
        processes_before = _gunicorn_processes(server.pid, workers=2)
        for thread in readers.threads:
            thread.start()
        deadline = time.monotonic() + PATIENCE_S
        while len(readers.acknowledged) < 40:
            assert time.monotonic() < deadline and not readers.failures, readers.failures
            time.sleep(0.01)

        postgres_server.stop("immediate")
        time.sleep(1.5)  # the readers go on answering into the outage
        acknowledged_while_down = len(readers.acknowledged)
        postgres_server.start()
        back = time.monotonic()

        deadline = back + PATIENCE_S
        while min(readers.count_since(back).values()) < 10:
            assert time.monotonic() < deadline, (readers.count_since(back), readers.refusals[-3:])
            assert not readers.failures, readers.failures
            time.sleep(0.05)
        readers.stop.set()
        for thread in readers.threads:
            thread.join(timeout=PATIENCE_S)
        status, health, _ = _call(port, "GET", "/healthz", "")
        processes_after = _gunicorn_processes(server.pid, workers=2)
    finally:
        readers.stop.set()
        server.terminate()
        server.wait(timeout=30)

    assert not readers.failures, readers.failures  # no connection was refused or reset
    assert status == 200 and health["database"]["ok"]
    assert processes_after == processes_before  # neither gunicorn nor a worker was restarted
    # The outage was felt, and said so: 503, a message naming the database, a time to retry.
    assert readers.refusals, "no request reached the site while the database was away"
    assert acknowledged_while_down >= 40
    for refused_status, body, retry_after in readers.refusals:
        assert refused_status == 503 and retry_after == "5", (refused_status, body)
        assert "database cannot be reached" in body["detail"]

    with psycopg.connect(postgres_server.url("site")) as conn:
        stored = conn.execute(
            "SELECT u.username, i.token, a.label FROM turing_answer a "
            "JOIN turing_assignment g ON g.id = a.assignment_id JOIN auth_user u ON u.id = g.reader_id "
            "JOIN turing_studyitem i ON i.id = a.item_id WHERE a.label IS NOT NULL"
        ).fetchall()
    acknowledged = {(name, token, label) for name, token, label, _ in readers.acknowledged}
    assert len(acknowledged) == len(readers.acknowledged)  # no item acknowledged twice
    assert acknowledged == set(stored) and len(stored) == len(set(stored))
