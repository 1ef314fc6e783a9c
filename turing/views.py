from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@login_required
@require_GET
def my_studies(request: HttpRequest) -> HttpResponse:
    """An expert's landing page: the studies they are invited to."""
    return render(request, "turing/my_studies.html", {"studies": []})
