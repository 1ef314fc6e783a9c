from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.roles import study_manager_required
from core.selectors import jobs_recent
from gan.selectors import datasets_overview


@study_manager_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The study manager's start page: datasets and the latest jobs."""
    return render(
        request,
        "core/dashboard.html",
        {"datasets": datasets_overview(), "jobs": jobs_recent(limit=10)},
    )
