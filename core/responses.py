"""Responses the apps' views share."""

from __future__ import annotations

from django.http import HttpResponse


def svg_response(svg: bytes) -> HttpResponse:
    """A chart drawn on the server (`core.charts`) as its own image."""
    return HttpResponse(svg, content_type="image/svg+xml")
