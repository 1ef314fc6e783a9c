"""What every form page does with a submitted form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.validators import fits_an_id

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


class IdChoiceField(forms.ModelChoiceField):
    """A model choice whose posted id is checked to fit the database before it is looked up: an id past
    2^63 - 1 is a choice that does not exist (Django would pass it on and the database fail)."""

    def to_python(self, value: Any) -> Any:
        if value not in self.empty_values and not fits_an_id(value):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class IdMultipleChoiceField(forms.ModelMultipleChoiceField):
    """As `IdChoiceField`, for several choices."""

    def clean(self, value: Any) -> Any:
        for pk in value if isinstance(value, list | tuple) else ():
            if not fits_an_id(pk):
                raise ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": str(pk)[:40]},
                )
        return super().clean(value)
