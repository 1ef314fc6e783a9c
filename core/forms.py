"""What every form page does with a submitted form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

T = TypeVar("T")


def form_submit(
    form: forms.BaseForm, action: Callable[[dict[str, Any]], T], *refusals: type[Exception]
) -> T | None:
    """Runs `action` on a bound and valid form's cleaned data and returns what it made. An unbound or
    invalid form returns None; so does an action that refuses (raises one of `refusals`), whose message
    becomes the form's error, shown above its fields."""
    if not form.is_bound or not form.is_valid():
        return None
    try:
        return action(form.cleaned_data)
    except refusals as exc:
        form.add_error(None, str(exc))
        return None


def form_page(
    request: HttpRequest,
    form: forms.BaseForm,
    template: str,
    start: Callable[[dict[str, Any]], HttpResponse],
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
