"""The Content-Security-Policy on every response, error pages included.

django-csp leaves 404 and 500 responses without the header while DEBUG is on (so that Django's debug
pages keep their inline script); a page that echoes part of a hostile URL then has no policy at all.
This runs after django-csp and sets the same policy wherever it was left out.
"""

from __future__ import annotations

from collections.abc import Callable

from csp.constants import HEADER
from csp.utils import build_policy
from django.http import HttpRequest
from django.http.response import HttpResponseBase


def csp_everywhere(
    get_response: Callable[[HttpRequest], HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    def middleware(request: HttpRequest) -> HttpResponseBase:
        response = get_response(request)
        if HEADER not in response:
            response[HEADER] = build_policy()
        return response

    return middleware
