from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.roles import study_manager_required


@study_manager_required
@require_GET
def report_list(request: HttpRequest) -> HttpResponse:
    return render(request, "evaluation/report_list.html", {"reports": []})
