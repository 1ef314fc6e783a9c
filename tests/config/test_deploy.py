"""The deployment files of deploy/: they parse, every variable they set is one the project reads, each
role's worker takes the queues its jobs go to, and `check --deploy` is clean for the object store."""

from __future__ import annotations

import configparser
import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.celery import app
from core.models import Job
from gan import jobs

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# Read by other programs than ours: CUDA, Python, compose's PostgreSQL and MinIO images.
OTHER_PROGRAMS = {
    "CUDA_VISIBLE_DEVICES",
    "PYTHONUNBUFFERED",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
}
OTHER_PREFIXES = ("MINIO_",)


def _read_by_settings() -> set[str]:
    """Every variable config/settings.py reads (env.string("NAME"), env.boolean("NAME", ...), ...)."""
    text = (REPO / "config" / "settings.py").read_text()
    return set(re.findall(r"env\.\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", text))


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / name).read_text())
    return parser


def _env_file(name: str) -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / "env" / name).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def _queues(command: list[str]) -> set[str]:
    assert command[command.index("worker") - 2 : command.index("worker")] == ["-A", "config"], command
    return set(command[command.index("-Q") + 1].split(","))


UNITS = ["histoturing-web.service", "histoturing-worker.service", "histoturing-gpu-worker@.service"]


@pytest.mark.parametrize("name", UNITS)
def test_each_systemd_unit_parses_and_runs_a_program_of_the_project(name: str) -> None:
    unit = _unit(name)
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    command = shlex.split(service["ExecStart"])
    assert command[0].startswith("/opt/histoturing/.venv/bin/")
    assert service["WorkingDirectory"] == "/opt/histoturing"
    assert service["EnvironmentFile"].startswith("/etc/histoturing/")
    assert (DEPLOY / "env" / Path(service["EnvironmentFile"]).name).exists()
    # A bare % is a systemd specifier: Celery's %h must be written %%h; %i is the instance (the GPU).
    for line in (service["ExecStart"], service.get("Environment", "")):
        assert not re.findall(r"%(?![%i])", line.replace("%%", "")), line


def test_the_workers_take_the_queues_their_jobs_go_to() -> None:
    web_worker = shlex.split(_unit("histoturing-worker.service")["Service"]["ExecStart"])
    gpu_unit = _unit("histoturing-gpu-worker@.service")["Service"]
    gpu_worker = shlex.split(gpu_unit["ExecStart"])
    assert _queues(gpu_worker) == {jobs.TRAINING.queue, jobs.SAMPLING.queue} == {Job.Queue.GPU}
    assert _queues(web_worker) == {Job.Queue.DEFAULT}
    assert _queues(web_worker) | _queues(gpu_worker) == {queue.name for queue in app.conf.task_queues}
    assert gpu_worker[gpu_worker.index("-c") + 1] == "1"  # one task at a time per GPU
    assert gpu_unit["Environment"] == "CUDA_VISIBLE_DEVICES=%i"
    compose = yaml.safe_load((DEPLOY / "compose" / "gpu-worker.yml").read_text())["services"]["gpu-worker"]
    assert (
        _queues(compose["command"]) == {Job.Queue.GPU}
        and compose["command"][compose["command"].index("-c") + 1] == "1"
    )
    web = yaml.safe_load((DEPLOY / "compose" / "web.yml").read_text())["services"]
    assert _queues(web["worker"]["command"]) == {Job.Queue.DEFAULT}


def test_every_variable_the_files_set_is_one_something_reads() -> None:
    known = _read_by_settings()
    assert {"MEDIA_STORAGE", "AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL", "WORKER_CACHE_MAX_MB"} <= known
    compose_env: dict[str, Any] = {}
    for name in ("web.yml", "gpu-worker.yml"):
        for service in yaml.safe_load((DEPLOY / "compose" / name).read_text())["services"].values():
            compose_env |= service.get("environment", {})
            for env_file in service.get("env_file", []):
                assert (DEPLOY / "compose" / env_file).resolve().exists(), env_file
    for name, variables in (
        ("web.env", _env_file("web.env")),
        ("gpu-worker.env", _env_file("gpu-worker.env")),
        ("compose", compose_env),
    ):
        unknown = {
            v for v in variables if v not in known | OTHER_PROGRAMS and not v.startswith(OTHER_PREFIXES)
        }
        assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"


def test_a_gpu_host_shares_nothing_with_the_web_host_but_the_services() -> None:
    gpu = _env_file("gpu-worker.env")
    web = _env_file("web.env")
    shared = {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_STORAGE", "AWS_STORAGE_BUCKET_NAME"}
    assert all(gpu[name] == web[name] for name in shared)
    assert gpu["MEDIA_STORAGE"] == "s3" and "MEDIA_ROOT" not in gpu
    worker = yaml.safe_load((DEPLOY / "compose" / "gpu-worker.yml").read_text())
    mounts = worker["services"]["gpu-worker"]["volumes"]
    assert mounts == ["cache:/var/lib/histoturing/cache"]  # its own cache, no shared disk
    reservation = worker["services"]["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert reservation["driver"] == "nvidia" and "gpu" in reservation["capabilities"]


@pytest.mark.parametrize("role", ["web.env", "gpu-worker.env"])
def test_check_deploy_is_clean_on_the_object_store(role: str, tmp_path: Path) -> None:
    """`manage.py check --deploy` with each role's file as its environment (a real key and host)."""
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "MEDIA_ROOT", "WORKER_CACHE_DIR"}}
    env |= _env_file(role) | {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "HISTOTURING_DATA_DIR": str(tmp_path),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "turing.example.org",
    }
    env.pop("DATABASE_URL")  # checked without a database: the file's host does not exist here
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
    settings_dump = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.core.files.storage import default_storage as s; "
            "print(s.__class__.__name__, s.bucket_name)",
        ],
        cwd=REPO,
        env=env | {"DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert settings_dump.stdout.split() == ["MediaS3Storage", "histoturing-media"], settings_dump.stderr
