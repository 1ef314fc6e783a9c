"""The web server killed with SIGKILL during a burst of answers: every answer said saved is stored, once."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from tests.servers import PATIENCE_S, free_port, site_env, start_gunicorn, wait_until_serving
from tests.sessions import session_key_for
from turing.models import Answer, Study
from turing.services import study_invite

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]  # gunicorn reads what we write
REPO = Path(__file__).resolve().parents[2]


def _session_cookie(user: Any) -> str:
    return f"{django_settings.SESSION_COOKIE_NAME}={session_key_for(user)}; csrftoken={'c' * 32}"


def _call(port: int, method: str, path: str, cookie: str, body: dict | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE_S)
    headers = {"Cookie": cookie, "X-CSRFToken": "c" * 32, "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    status, data = response.status, response.read()
    conn.close()
    return status, json.loads(data) if data else None


def test_answers_acknowledged_before_a_kill_9_are_all_stored_once(
    study: Study, expert: Any, other_expert: Any, tmp_path: Path
) -> None:
    study_invite(study=study, reader=other_expert)
    port = free_port()
    server = start_gunicorn(site_env(), port=port, log_path=tmp_path / "gunicorn.log", cwd=REPO)
    acknowledged: list[tuple[str, str, str]] = []
    lock = threading.Lock()
    try:
        wait_until_serving(port, process=server)

        def reader(user: Any) -> None:
            cookie = _session_cookie(user)
            try:
                status, upcoming = _call(port, "GET", f"/api/studies/{study.pk}/next", cookie)
                while status in (200, 201) and not upcoming["finished"]:
                    label = secrets.choice(["real", "synthetic"])
                    token = upcoming["item"]["token"]
                    status, body = _call(
                        port,
                        "POST",
                        f"/api/studies/{study.pk}/answers",
                        cookie,
                        {"token": token, "label": label},
                    )
                    if status == 201 and body["saved"]:
                        with lock:
                            acknowledged.append((user.username, token, label))
                        upcoming = body["next"]
            except (OSError, http.client.HTTPException):
                return  # the server died mid-request: this answer was never acknowledged

        threads = [threading.Thread(target=reader, args=(u,)) for u in (expert, other_expert)]
        for thread in threads:
            thread.start()
        while len(acknowledged) < 6 and any(t.is_alive() for t in threads):
            time.sleep(0.005)
        os.killpg(server.pid, signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=PATIENCE_S)  # their connections are reset at once: this does not wait
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    stored = list(
        Answer.objects.filter(assignment__study=study, label__isnull=False).values_list(
            "assignment__reader__username", "item__token", "label"
        )
    )
    assert len(acknowledged) >= 6
    assert set(acknowledged) <= set(stored)  # nothing said "saved" is lost
    assert len(stored) == len(set(stored)) and len(stored) < 20  # once each; the kill came mid-burst
