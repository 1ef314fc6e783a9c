"""Private server processes for fault tests: they are killed and restarted without touching the
services the rest of the suite (and CI) runs on."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, *, timeout_s: float = 30, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout_s} s")


# How long a test waits on a server that is working, before it calls it stuck: long, because a loaded
# machine (other work on every core) can take many times longer than an idle one, and a test that ends
# when its condition is met loses nothing by allowing it. A server that has died fails at once.
PATIENCE_S = 300.0


def wait_until_serving(port: int, *, process: subprocess.Popen[bytes], timeout_s: float = PATIENCE_S) -> None:
    """Until the site answers /healthz with 200 (its workers have loaded the application), or its process
    has exited; not merely until its port is open."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE_S)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.2)
    raise RuntimeError(f"the site on port {port} did not answer /healthz in {timeout_s:g} s")


def site_env(**changes: str) -> dict[str, str]:
    """The environment of a server process that serves the test database and data folder."""
    from django.conf import settings
    from django.db import connection

    from tests.conftest import _database_url

    return (
        dict(os.environ)
        | {
            "DATABASE_URL": _database_url(connection.settings_dict),
            "HISTOTURING_DATA_DIR": str(settings.DATA_DIR),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "ALLOWED_HOSTS": "127.0.0.1",
        }
        | changes
    )


def start_gunicorn(
    env: dict[str, str], *, port: int, log_path: Path, cwd: Path, workers: int = 2
) -> subprocess.Popen[bytes]:
    """The site under gunicorn, as in production, in its own process group (so it can be killed whole)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
        ],
        cwd=cwd,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


class PrivateRedis:
    """A Redis server of our own on a free port that keeps nothing on disk: a restart loses every
    message it held, which is the harder case for the jobs queued in it."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        self.binary, self.folder, self.port = binary, folder, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.folder / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.proc)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: nothing is flushed or handed over."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb in a temporary folder, trust authentication, no fsync),
    run as the `postgres` system user when we are root, since PostgreSQL refuses to run as root."""

    def __init__(self) -> None:
        bindir = _postgres_bindir()
        self.initdb, self.pg_ctl = bindir / "initdb", bindir / "pg_ctl"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise FileNotFoundError("runuser is needed to run PostgreSQL as its own user")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.folder = Path(tempfile.mkdtemp(prefix="histoturing-pg-"))
        if self.as_user:
            shutil.chown(self.folder, "postgres")
        self.port = free_port()
        self._run(self.initdb, "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    @property
    def data(self) -> str:
        return str(self.folder / "data")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str | Path) -> None:
        done = subprocess.run(
            [*self.as_user, *map(str, command)], capture_output=True, text=True, timeout=PATIENCE_S
        )
        if done.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self._run(
            self.pg_ctl, "-D", self.data, "-l", self.folder / "server.log", "-o", options, "-w", "start"
        )

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` ends every backend at once with no checkpoint: a crash, recovered at the next start."""
        self._run(self.pg_ctl, "-D", self.data, "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _postgres_bindir() -> Path:
    if (pg_config := shutil.which("pg_config")) is not None:
        bindir = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    raise FileNotFoundError("PostgreSQL's server programs (initdb, pg_ctl) are not installed")


class S3Server:
    """An S3-compatible server of our own on the loopback: moto's server mode, a separate process spoken
    to over HTTP, as the site and its workers speak to AWS S3 or MinIO (nothing is mocked in-process)."""

    BUCKET = "histoturing-test-media"

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The variables that point the site or a worker at this server's bucket."""
        return {
            "MEDIA_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": self.BUCKET,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": "histoturing-test",
            "AWS_SECRET_ACCESS_KEY": "histoturing-test-secret",
        }

    def client(self) -> Any:
        import boto3

        env = self.env()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=env["AWS_S3_REGION_NAME"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=self.folder,
            stdout=(self.folder / "s3.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.proc, timeout_s=PATIENCE_S)
        self.client().create_bucket(Bucket=self.BUCKET)

    def objects(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=PATIENCE_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@contextlib.contextmanager
def bench_environment(storage: str) -> Iterator[tuple[str, S3Server | None]]:
    """A benchmark's own throw-away world, set in os.environ before Django starts: a data folder (a SQLite
    database), and media on `storage`: `filesystem`, or `s3` (the store AWS_S3_ENDPOINT_URL names, or
    else an S3 server process of its own). Yields the folder and that server (None if none)."""
    workdir = tempfile.mkdtemp(prefix="histoturing-bench-")
    os.environ.update(
        {"DEBUG": "1", "HISTOTURING_DATA_DIR": workdir, "DJANGO_SETTINGS_MODULE": "config.settings"}
    )
    os.environ.pop("DATABASE_URL", None)
    os.environ["MEDIA_STORAGE"] = storage
    server = None
    if storage == "s3" and not os.environ.get("AWS_S3_ENDPOINT_URL"):
        server = S3Server(Path(workdir))
        server.start()
        os.environ.update(server.env())
    try:
        yield workdir, server
    finally:
        if server is not None:
            server.stop()
