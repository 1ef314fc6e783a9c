"""What every form page does with a submitted form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

# Starts what a form asks for from its cleaned data, and says where to go next (a redirect).
Start = Callable[[dict[str, Any]], HttpResponse]


def form_submit(form: forms.BaseForm, start: Start, refusal: type[Exception]) -> HttpResponse | None:
    """Runs `start` on a bound and valid form's cleaned data and returns its response. An unbound or
    invalid form returns None; so does a start that refuses (raises `refusal`), whose message becomes the
    form's error, shown above its fields."""
    if not form.is_bound or not form.is_valid():
        return None
    try:
        return start(form.cleaned_data)
    except refusal as exc:
        form.add_error(None, str(exc))
        return None


def form_page(
    request: HttpRequest,
    form: forms.BaseForm,
    template: str,
    start: Start,
    refusal: type[Exception],
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    """A page whose form starts something (a job, a run): `start` starts it and says where to go next
    (a redirect to what it started); until then, and when it refuses (raises `refusal`), the page shows
    `template` with the form, its errors and `context`."""
    response = form_submit(form, start, refusal)
    if response is not None:
        return response
    return render(request, template, {"form": form, **(context or {})})
