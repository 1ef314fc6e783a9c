"""Schemathesis against the served OpenAPI schema: whatever the input, no server error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from config.wsgi import application
from tests.sessions import session_key_for
from turing.models import Study

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """In-process WSGI calls would close the test's database connection after each request; Django's
    own test client disconnects the same signal handlers."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


CSRF = "f" * 32


def _cookies(user: Any) -> dict[str, str]:
    return {django_settings.SESSION_COOKIE_NAME: session_key_for(user), "csrftoken": CSRF}


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case: Any, study: Study, expert: Any, manager: Any) -> None:
    study_id = (case.path_parameters or {}).get("study_id")
    if isinstance(study_id, int) and study_id % 2 == 0:
        case.path_parameters["study_id"] = study.pk  # half the cases on a real study
    for user in (expert, manager, None):
        cookies = _cookies(user) if user is not None else {"csrftoken": CSRF}
        response = case.call(cookies=cookies, headers={"X-CSRFToken": CSRF})
        case.validate_response(response, checks=[not_a_server_error])
