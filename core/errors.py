"""The server-error page: a database that cannot be reached is a 503 that says what to do.

Rendered without the request context (no user, no session): when the database is down, anything
that reads it would fail again here.
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

DATABASE_UNAVAILABLE = (
    "The database cannot be reached just now, so this may not have been saved. Try again in a moment: "
    "an answer sent twice is stored once."
)
SERVER_ERROR = "Something went wrong on the server; it has been logged."
RETRY_AFTER_S = 5


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: Django calls it while the uncaught exception is being handled."""
    unavailable = isinstance(sys.exc_info()[1], OperationalError | InterfaceError)
    status, message = (503, DATABASE_UNAVAILABLE) if unavailable else (500, SERVER_ERROR)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=status)
    else:
        page = render_to_string("server_error.html", {"status": status, "message": message})
        response = HttpResponse(page, status=status)
    if unavailable:
        response["Retry-After"] = str(RETRY_AFTER_S)
    return response
