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
    *,
    start: Callable[[dict[str, Any]], T],
    refusals: tuple[type[Exception], ...],
    done: Callable[[T], HttpResponse],
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    """A page whose form starts something (a job, a run): once `start` has made it, `done` says where to
    go; until then the page shows `template` with the form, its errors and `context`."""
    made = form_submit(form, start, *refusals)
    if made is not None:
        return done(made)
    return render(request, template, {"form": form, **(context or {})})
