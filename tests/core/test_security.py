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
    settings.LOGIN_FREE_FAILURES = 3
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


HOSTILE = "<img src=x onerror=alert(document.domain)><meta http-equiv=refresh content=0>"


def _hostile_urls() -> list[str]:
    """Every URL pattern with each of its parameters replaced by a hostile segment."""
    from urllib.parse import quote

    from tests.core.test_permission_matrix import _names

    marker, urls = "987654321", []
    for name, converters, pattern in _names():
        keys = list(converters)
        for key in keys:
            kwargs = {k: marker if k == key else _sample(converters[k]) for k in keys}
            try:
                url = reverse(name, kwargs=kwargs)
            except Exception:  # noqa: S112  (a pattern whose converters take no such sample)
                continue
            urls.append(url.replace(marker, quote(HOSTILE, safe="")))
        if not keys and not pattern.pattern.regex.groupindex:
            urls.append(reverse(name) + quote(HOSTILE, safe=""))
    return urls


def _sample(converter: Any) -> str:
    return "00000000-0000-0000-0000-000000000000" if "uuid" in type(converter).__name__.lower() else "1"


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_no_response_echoes_a_hostile_url_unescaped(
    debug: bool, manager_client: Client, expert_client: Client, settings: Any
) -> None:
    settings.DEBUG = debug
    urls = _hostile_urls()
    assert len(urls) > 30
    for url in urls:
        for client in (manager_client, expert_client, Client()):
            response = client.get(url)
            assert response.status_code < 500, url
            assert "Content-Security-Policy" in response, (url, response.status_code)
            body = b"".join(response) if response.streaming else response.content
            assert b"<img src=x" not in body and b"<meta http-equiv=refresh" not in body, url


def test_unknown_exports_are_a_404_that_echoes_nothing(manager_client: Client, study: Any) -> None:
    page = manager_client.get(f"/manage/evaluation/studies/{study.pk}/%3Cb%3Ebold%3C%2Fb%3E.csv")
    assert page.status_code == 404 and b"<b>bold" not in page.content
    api = manager_client.get(f"/api/manage/studies/{study.pk}/export/%3Cb%3Ebold.csv")
    assert api.status_code == 404 and b"bold" not in api.content
    assert "answers, summary" in api.json()["detail"]  # the API says which exports exist


@pytest.mark.parametrize(
    "spelling", ["expert-a ", " EXPERT-A", "\uff45\uff58\uff50\uff45\uff52\uff54-a", "Expert-A\t"]
)
def test_every_spelling_of_a_name_shares_one_failure_count(spelling: str, expert: Any, settings: Any) -> None:
    settings.LOGIN_FREE_FAILURES = 3
    client = Client()
    for _ in range(3):
        assert client.post(reverse("login"), {"username": "expert-a", "password": "wrong"}).status_code == 200
    blocked = Client(REMOTE_ADDR="10.9.8.7").post(
        reverse("login"), {"username": spelling, "password": "a-long-test-pass-1"}
    )
    assert blocked.status_code == 429, spelling


@pytest.mark.parametrize(
    "spelling", ["Expert-A", " expert-a ", "\uff45\uff58\uff50\uff45\uff52\uff54-\uff41"]
)
def test_a_name_signs_in_whatever_its_spelling(spelling: str, expert: Any) -> None:
    response = Client().post(reverse("login"), {"username": spelling, "password": "a-long-test-pass-1"})
    assert response.status_code == 302


def test_accounts_are_created_under_the_one_spelling(db: None) -> None:
    from django.core.exceptions import ValidationError

    from core.services import user_create

    user, _ = user_create(username=" Dr.Smith ", role="expert", password="x" * 20, validate=False)
    assert user.username == "dr.smith"
    with pytest.raises(ValidationError, match="already exists"):
        user_create(username="\uff24\uff52.smith", role="expert", password="x" * 20, validate=False)


def test_ten_wrong_guesses_keep_a_reader_out_for_a_minute_at_most(expert: Any, settings: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from core.models import LoginFailure
    from core.services import login_blocked_for

    LoginFailure.objects.bulk_create(
        LoginFailure(username="expert-a", address="10.0.0.66") for _ in range(10)
    )  # ten wrong guesses by someone else, as fast as the delay lets them through
    wait = login_blocked_for(username="expert-a", address="10.0.0.1")
    assert 0 < wait <= settings.LOGIN_DELAY_MAX_S
    LoginFailure.objects.update(at=timezone.now() - timedelta(seconds=settings.LOGIN_DELAY_MAX_S + 1))
    response = Client(REMOTE_ADDR="10.0.0.1").post(
        reverse("login"), {"username": "expert-a", "password": "a-long-test-pass-1"}
    )
    assert response.status_code == 302  # the reader is in
    # Ten guesses at one name do not block their address: a reader behind the same address (one
    # hospital's NAT) would be locked out with the guesser. The account's own delay slows the guesser.
    assert login_blocked_for(username="nobody", address="10.0.0.66") == 0


def test_the_reader_is_not_locked_out_by_a_guesser_at_the_same_address(expert: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from core.models import LoginFailure

    for _ in range(10):
        Client(REMOTE_ADDR="10.0.0.5").post(reverse("login"), {"username": "expert-a", "password": "guess"})
    LoginFailure.objects.update(at=timezone.now() - timedelta(seconds=61))  # a minute later
    response = Client(REMOTE_ADDR="10.0.0.5").post(
        reverse("login"), {"username": "expert-a", "password": "a-long-test-pass-1"}
    )
    assert response.status_code == 302


def test_the_wait_grows_with_each_failure(settings: Any) -> None:
    from core.services import login_delay_s

    settings.LOGIN_FREE_FAILURES, settings.LOGIN_DELAY_MAX_S = 5, 60
    delays = [login_delay_s(n) for n in range(12)]
    assert delays[:5] == [0] * 5
    assert delays[5:] == [2, 4, 8, 16, 32, 60, 60]
