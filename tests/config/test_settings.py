from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import Env
from tests.servers import PATIENCE_S

REPO = Path(__file__).resolve().parents[2]


def _load_settings(tmp_path: Path, *, then: str = "", **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY"}
    }
    env |= {"HISTOTURING_DATA_DIR": str(tmp_path), "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings"}
    env |= overrides
    code = "from django.conf import settings as s; print(s.DATABASES['default']['ENGINE'], s.SECRET_KEY)"
    code += f"; {then}" if then else ""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=PATIENCE_S
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DATABASE_URL", "mysql-ish://nope", "DATABASE_URL"),
        ("DATABASE_URL", "sqlite://:memory:", "DATABASE_URL must name a SQLite file"),
        ("CELERY_BROKER_URL", "kafka://localhost", "CELERY_BROKER_URL"),
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("MEDIA_ROOT", "relative/media", "MEDIA_ROOT='relative/media' must be an absolute path"),
        ("SESSION_COOKIE_AGE", "soon", "SESSION_COOKIE_AGE='soon' is not a whole number"),
        ("SECRET_KEY", "short", "SECRET_KEY is too short"),
    ],
)
def test_a_wrong_value_names_its_variable(tmp_path: Path, variable: str, value: str, message: str) -> None:
    result = _load_settings(tmp_path, **{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_secret_key_is_required_when_debug_is_off(tmp_path: Path) -> None:
    result = _load_settings(tmp_path, DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_importing_the_settings_writes_nothing_and_django_setup_makes_the_data_folders(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    key = "k" * 40
    loaded = _load_settings(data, DEBUG="0", SECRET_KEY=key)
    assert loaded.returncode == 0, loaded.stderr
    assert not data.exists()
    started = _load_settings(data, then="import django; django.setup()", DEBUG="0", SECRET_KEY=key)
    assert started.returncode == 0, started.stderr
    assert {p.name for p in data.iterdir()} == {"static", "broker"} and (data / "broker" / "queue").is_dir()


def test_local_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = _load_settings(tmp_path)
    second = _load_settings(tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_default_database_is_a_sqlite_file_in_the_data_folder(tmp_path: Path) -> None:
    result = _load_settings(tmp_path)
    assert result.stdout.startswith("django.db.backends.sqlite3")


def test_env_helpers_parse_and_validate() -> None:
    env = Env({"A": "yes", "N": "12", "L": "a, b,,c", "F": "0.5"})
    assert env.boolean("A", False) is True
    assert env.boolean("MISSING", True) is True
    assert env.integer("N", 0) == 12
    assert env.items("L", []) == ["a", "b", "c"]
    assert env.number("F", 1.0) == 0.5
    with pytest.raises(ImproperlyConfigured, match="N=12 is below its minimum of 20"):
        env.integer("N", 0, minimum=20)
    with pytest.raises(ImproperlyConfigured, match="A='yes' is not one of x, y"):
        env.choice("A", "x", ("x", "y"))


def test_sqlite_runs_in_wal_mode(db: None) -> None:
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
