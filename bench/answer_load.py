"""Answer load: N concurrent experts answering against gunicorn + PostgreSQL on this machine.

Sets up a throw-away PostgreSQL database (`histoturing_bench` by default), a study with one assignment
per expert, and a logged-in session per expert; starts gunicorn; then every expert answers their
items from one asyncio client, each at a steady pace that adds up to --rate answers per second (as
fast as the server lets them with --rate 0). Bounded by answer count and by time.
Prints answers per second, p50/p95/p99 latency of the answer requests,
errors, and afterwards checks that every answer the server said was saved is in the database once.

Absolute rates on a shared 2-core machine vary 2-3x from day to day, so the same run first measures
the stack's own ceiling: the capacity of a minimal authenticated view (`GET /api/me`: the session, the
user and one query) against the capacity of the answer path, both as fast as the server answers, and
prints the answer path's share of it (aim: at least 60%).

    python bench/answer_load.py                       # 50 experts, 300/s offered, 60 s
    python bench/answer_load.py --rate 0              # capacity: every reader answers at once
    python bench/answer_load.py --worker-class gthread --threads 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from argparse import ArgumentParser, RawDescriptionHelpFormatter
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def prepare(args: argparse.Namespace, workdir: str) -> dict[str, object]:
    """Database, users, study and sessions; returns what the load needs."""
    import psycopg

    url = urlsplit(args.database_url)
    name = url.path.lstrip("/")
    admin = args.database_url.replace(url.path, "/postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')

    import django

    django.setup()
    from importlib import import_module

    import numpy as np
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    SessionStore = import_module(settings.SESSION_ENGINE).SessionStore
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.core.management import call_command

    from core.services import user_create
    from gan import imaging
    from gan.models import Dataset, Patch, Source
    from turing.services import ArmSpec, StudySpec, study_create

    call_command("migrate", verbosity=0)
    rng = np.random.default_rng(0)
    datasets = {}
    for source in (Source.REAL, Source.SYNTHETIC):
        dataset = Dataset.objects.create(name=f"bench {source}", source=source)
        patches = []
        for _ in range(args.answers):
            image = imaging.from_array(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
            digest = imaging.content_hash(image)
            name_ = default_storage.save(
                f"patches/{dataset.pk}/{digest}.png", ContentFile(imaging.encode_png(image))
            )
            patches.append(
                Patch(dataset=dataset, tissue_class="LYM", source=source, content_hash=digest, image=name_)
            )
        Patch.objects.bulk_create(patches)
        datasets[source] = dataset
    experts = [
        user_create(
            username=f"reader{i:03}", role="expert", password=secrets.token_urlsafe(), validate=False
        )[0]
        for i in range(args.experts)
    ]
    spec = StudySpec(
        name="load",
        real_datasets=[datasets[Source.REAL]],
        arms=[ArmSpec("synthetic", [datasets[Source.SYNTHETIC]], 1)],
        items_per_reader=args.answers,
    )
    study = study_create(spec=spec, readers=experts)
    sessions = []
    for user in experts:
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        csrf = secrets.token_hex(16)  # a 32-character CSRF secret, sent as cookie and header
        sessions.append(f"{settings.SESSION_COOKIE_NAME}={store.session_key}; csrftoken={csrf}")
    return {"study": study.pk, "sessions": sessions, "readers": [u.username for u in experts]}


class Connection:
    """One reader's HTTP/1.1 connection: kept alive, or a new one per request (`fresh`)."""

    def __init__(self, port: int, fresh: bool) -> None:
        self.port, self.fresh = port, fresh
        self.pair: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, cookie: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.pair is None:
            self.pair = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            return await request(*self.pair, method, path, cookie, body, close=self.fresh)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.close()
            raise
        finally:
            if self.fresh:
                self.close()

    def close(self) -> None:
        if self.pair is not None:
            self.pair[1].close()
            self.pair = None


async def request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    method: str,
    path: str,
    cookie: str,
    body: bytes = b"",
    close: bool = False,
) -> tuple[int, bytes]:
    csrf = cookie.rsplit("csrftoken=", 1)[1]
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nX-CSRFToken: {csrf}\r\n"
        f"Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def expert(
    port: int,
    study: int,
    cookie: str,
    reader_name: str,
    deadline: float,
    interval: float,
    fresh: bool,
    results: dict[str, list],
) -> None:
    """One reader: answers every `interval` seconds (0: as fast as the server answers)."""
    connection = Connection(port, fresh)
    try:
        status, body = await connection.request("GET", f"/api/studies/{study}/next", cookie)
        upcoming = json.loads(body)
        loop = asyncio.get_running_loop()
        due = loop.time() + interval * secrets.randbelow(1000) / 1000  # readers start out of step
        while not upcoming["finished"] and time.monotonic() < deadline:
            if interval:
                await asyncio.sleep(max(0.0, due - loop.time()))
                due += interval
            token = upcoming["item"]["token"]
            label = "real" if secrets.randbits(1) else "synthetic"
            payload = json.dumps({"token": token, "label": label, "confidence": 3}).encode()
            start = time.perf_counter()
            try:
                status, body = await connection.request(
                    "POST", f"/api/studies/{study}/answers", cookie, payload
                )
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                results["errors"].append(f"{type(exc).__name__}")
                continue
            results["latency"].append(time.perf_counter() - start)
            if status != 201:
                results["errors"].append(f"HTTP {status}: {body[:120]!r}")
                break
            results["saved"].append((reader_name, token, label))
            upcoming = json.loads(body)["next"]
    finally:
        connection.close()


async def pinger(port: int, cookie: str, deadline: float, fresh: bool, results: dict[str, list]) -> None:
    """One signed-in client calling the minimal view as fast as the server answers."""
    connection = Connection(port, fresh)
    try:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                status, body = await connection.request("GET", "/api/me", cookie)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                results["errors"].append(type(exc).__name__)
                continue
            results["latency"].append(time.perf_counter() - start)
            if status != 200:
                results["errors"].append(f"HTTP {status}: {body[:120]!r}")
                break
            results["saved"].append(None)
    finally:
        connection.close()


async def minimal_view_load(port: int, sessions: list[str], duration: float, fresh: bool) -> dict[str, list]:
    results: dict[str, list] = {"latency": [], "errors": [], "saved": []}
    deadline = time.monotonic() + duration
    await asyncio.gather(*(pinger(port, cookie, deadline, fresh, results) for cookie in sessions))
    return results


async def load(
    port: int, study: int, sessions: list[str], readers: list[str], duration: float, rate: float, fresh: bool
) -> dict[str, list]:
    results: dict[str, list] = {"latency": [], "errors": [], "saved": []}
    deadline = time.monotonic() + duration
    interval = len(sessions) / rate if rate else 0.0
    await asyncio.gather(
        *(
            expert(port, study, c, r, deadline, interval, fresh, results)
            for c, r in zip(sessions, readers, strict=True)
        )
    )
    return results


def main() -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    parser.add_argument("--experts", type=int, default=50)
    parser.add_argument(
        "--answers",
        type=int,
        default=600,
        help="items per reader (enough that the runs end by their durations, not by running out)",
    )
    parser.add_argument("--duration", type=float, default=60, help="stop after this many seconds")
    parser.add_argument(
        "--rate",
        type=float,
        default=300,
        help="answers per second offered by all experts together (each reader thinks between answers); "
        "0: every reader answers as soon as the last answer is saved (the server's capacity)",
    )
    parser.add_argument(
        "--ceiling-duration",
        type=float,
        default=10,
        help="seconds of each capacity run (minimal view, answers, minimal view) before the main; 0: none",
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--worker-class", default="sync", help="sync: a connection per request; gthread: kept alive"
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/histoturing_bench")
    parser.add_argument(
        "--memory-every", type=float, default=0, help="sample every process's RSS this often (s)"
    )
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="histoturing-load-")
    env = {
        "DATABASE_URL": args.database_url,
        "HISTOTURING_DATA_DIR": workdir,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SESSION_COOKIE_SECURE": "0",
        "SECURE_SSL_REDIRECT": "0",
        "CSRF_COOKIE_SECURE": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    setup = prepare(args, workdir)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--worker-class",
            args.worker_class,
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=os.environ.copy(),
        start_new_session=True,
    )
    try:
        import urllib.request

        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{args.port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        import psutil

        gunicorn = psutil.Process(server.pid)
        server_procs = [gunicorn, *gunicorn.children(recursive=True)]

        def postgres() -> list[psutil.Process]:
            """Every PostgreSQL process now: the server's backends open when gunicorn's workers connect."""
            return [p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres")]

        def cpu_by_pid(processes: list[psutil.Process]) -> dict[int, float]:
            out = {}
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    out[process.pid] = times.user + times.system
            return out

        groups = {"server": lambda: server_procs, "postgres": postgres, "client": lambda: [psutil.Process()]}
        before = {name: cpu_by_pid(list_()) for name, list_ in groups.items()}
        samples: list[tuple[float, dict[str, float]]] = []

        def rss() -> dict[str, float]:
            out = {}
            for process in [*server_procs, *postgres()]:
                with contextlib.suppress(psutil.Error):  # a process that has just ended
                    out[f"{process.name()}[{process.pid}]"] = process.memory_info().rss / 2**20
            return out

        # CPU seconds last seen per process: polled every second, because PostgreSQL backends end and
        # start during a long run (connections are recycled after DATABASE_CONN_MAX_AGE).
        seen = {name: dict(values) for name, values in before.items()}

        def poll_cpu() -> None:
            for name, list_ in groups.items():
                seen[name].update(cpu_by_pid(list_()))

        async def with_samplers() -> dict[str, list]:
            async def sample_memory() -> None:
                begin = time.perf_counter()
                while True:
                    samples.append((time.perf_counter() - begin, rss()))
                    await asyncio.sleep(args.memory_every)

            async def sample_cpu() -> None:
                while True:
                    await asyncio.sleep(1)
                    poll_cpu()

            samplers = [asyncio.create_task(sample_cpu())]
            if args.memory_every:
                samplers.append(asyncio.create_task(sample_memory()))
            try:
                return await load(
                    args.port,
                    int(setup["study"]),
                    list(setup["sessions"]),
                    list(setup["readers"]),
                    args.duration,
                    args.rate,
                    fresh,
                )
            finally:
                for sampler in samplers:
                    sampler.cancel()

        fresh = args.worker_class == "sync"
        ceiling: dict[str, list[float]] = {"minimal view": [], "answers": []}
        saved_before: list = []  # answers saved by the capacity run, checked with the rest at the end
        if args.ceiling_duration:
            sessions, readers = list(setup["sessions"]), list(setup["readers"])
            for what in ("minimal view", "answers", "minimal view"):
                begin = time.perf_counter()
                if what == "answers":
                    done = asyncio.run(
                        load(
                            args.port, int(setup["study"]), sessions, readers, args.ceiling_duration, 0, fresh
                        )
                    )
                    saved_before = done["saved"]
                else:
                    done = asyncio.run(minimal_view_load(args.port, sessions, args.ceiling_duration, fresh))
                if done["errors"]:
                    first = done["errors"][0]
                    print(f"errors in the {what} capacity run: {len(done['errors'])} (first: {first})")
                ceiling[what].append(len(done["saved"]) / (time.perf_counter() - begin))
        before = {name: cpu_by_pid(list_()) for name, list_ in groups.items()}
        seen = {name: dict(values) for name, values in before.items()}
        start = time.perf_counter()
        results = asyncio.run(with_samplers())
        elapsed = time.perf_counter() - start
        poll_cpu()  # a process that started during the load counts from zero
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    from turing.models import Answer

    latencies = sorted(results["latency"])
    saved = results["saved"]
    stored = Answer.objects.filter(assignment__study_id=setup["study"], label__isnull=False)
    in_db = list(stored.values_list("assignment__reader__username", "item__token", "label"))
    everything_saved = saved + saved_before
    missing = set(everything_saved) - set(in_db)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    offered = f"{args.rate:,.0f} answers/s offered" if args.rate else "as fast as possible"
    server_desc = f"gunicorn {args.workers} workers x {args.threads} threads ({args.worker_class})"
    print(f"{args.experts} experts x {args.answers} answers, {offered}; {server_desc}; PostgreSQL")
    print(f"{os.cpu_count()} CPU cores, shared by server, database and this client")
    if ceiling["answers"]:
        minimal = statistics.mean(ceiling["minimal view"])
        answers = ceiling["answers"][0]
        print(
            f"capacity, each as fast as the server answers for {args.ceiling_duration:.0f} s: minimal "
            f"authenticated view {minimal:,.0f} requests/s (runs before and after: "
            f"{', '.join(f'{v:,.0f}' for v in ceiling['minimal view'])}); answers {answers:,.0f}/s = "
            f"{100 * answers / minimal:.0f}% of the minimal view"
        )
    print(f"answers saved: {len(saved):,} in {elapsed:.1f} s = {len(saved) / elapsed:,.0f} answers/s")
    print(
        f"latency of the answer requests: p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, "
        f"p99 {q[98] * 1000:.1f} ms, max {latencies[-1] * 1000 if latencies else 0:.1f} ms"
    )
    used = {
        name: sum(seconds - before[name].get(pid, 0.0) for pid, seconds in seen[name].items())
        for name in seen
    }
    per_answer = {name: 1000 * value / max(len(saved), 1) for name, value in used.items()}
    print(
        "CPU seconds used during the load: "
        + ", ".join(f"{k} {v:.1f}" for k, v in used.items())
        + f" (of {elapsed * (os.cpu_count() or 1):.1f} available); per answer: "
        f"server {per_answer['server']:.2f} ms, PostgreSQL {per_answer['postgres']:.2f} ms"
    )
    if samples:
        print(
            f"resident memory (MB) at {', '.join(f'{t:.0f}' for t, _ in samples)} s; change after the first"
        )
        print("sample (warm-up: a worker loads its code on its first request) to the last:")
        names = dict.fromkeys(name for _, sample in samples for name in sample)
        for name in names:
            series = [sample.get(name) for _, sample in samples]
            cells = " ".join(f"{v:>5.0f}" if v is not None else "    —" for v in series)
            known = [v for v in series[1:] if v is not None]
            change = f"{known[-1] - known[0]:+.0f} MB" if len(known) > 1 else "—"
            print(f"  {name:<28} {cells}   {change}")
    print(
        f"errors: {len(results['errors'])}"
        + (f" (first: {results['errors'][0]})" if results["errors"] else "")
    )
    print(
        f"in the database: {stored.count():,} answers; every saved answer present once with its label: "
        f"{'yes' if not missing and len(in_db) == len(everything_saved) else f'NO ({len(missing)} missing)'}"
    )


if __name__ == "__main__":
    main()
