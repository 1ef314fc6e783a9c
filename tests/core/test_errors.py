from __future__ import annotations

import json

import pytest
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.test import RequestFactory

from core.errors import server_error


def _handled(exc: Exception, path: str) -> HttpResponse:
    """What handler500 returns while Django handles `exc` (it calls it inside the except block)."""
    try:
        raise exc
    except Exception:
        return server_error(RequestFactory().post(path))


@pytest.mark.parametrize("exc", [OperationalError("server closed the connection"), InterfaceError("closed")])
def test_an_unreachable_database_is_a_503_that_says_to_try_again(exc: Exception) -> None:
    api = _handled(exc, "/api/studies/1/answers")
    assert api.status_code == 503 and api["Retry-After"] == "5"
    assert api["Content-Type"] == "application/json"
    assert "database cannot be reached" in json.loads(api.content)["detail"]
    page = _handled(exc, "/studies/1/")
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert b"Briefly unavailable" in page.content and b"database cannot be reached" in page.content


def test_other_server_errors_stay_500_and_api_errors_are_json() -> None:
    api = _handled(ValueError("a bug"), "/api/studies/1/answers")
    assert api.status_code == 500 and "Retry-After" not in api
    assert json.loads(api.content) == {"detail": "Something went wrong on the server; it has been logged."}
    page = _handled(ValueError("a bug"), "/manage/studies/")
    assert page.status_code == 500 and b"Server error" in page.content and b"a bug" not in page.content
