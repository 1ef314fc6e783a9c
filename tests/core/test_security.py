from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_check_deploy_is_clean_under_production_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}} | {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "turing.example.org",
        "HISTOTURING_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_pages_carry_the_security_headers(client: Client) -> None:
    response = client.get(reverse("login"))
    policy = response["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    )
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_templates_hold_no_inline_script() -> None:
    for template in (REPO / "templates").rglob("*.html"):
        text = template.read_text()
        for chunk in text.split("<script")[1:]:
            assert 'src="' in chunk.split(">")[0], f"inline <script> in {template}"
        assert " onclick=" not in text and " onload=" not in text, template


def test_logins_are_rate_limited(client: Client, expert: Any, settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        response = client.post(reverse("login"), {"username": "expert-a", "password": "wrong"})
        assert response.status_code == 200
    blocked = client.post(reverse("login"), {"username": "expert-a", "password": "a-long-test-pass-1"})
    assert blocked.status_code == 429 and b"Too many failed log-ins" in blocked.content
    other = Client(REMOTE_ADDR="10.9.8.7")
    assert (
        other.post(reverse("login"), {"username": "expert-a", "password": "a-long-test-pass-1"}).status_code
        == 429
    )


def test_failures_from_one_address_block_that_address(client: Client, expert: Any, settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    for name in ("a", "b", "c"):
        client.post(reverse("login"), {"username": name, "password": "x"})
    assert (
        client.post(reverse("login"), {"username": "expert-a", "password": "a-long-test-pass-1"}).status_code
        == 429
    )
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    response = elsewhere.post(reverse("login"), {"username": "expert-a", "password": "a-long-test-pass-1"})
    assert response.status_code == 302
