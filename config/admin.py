"""The admin site, closed to experts with a 403 rather than a login form.

Django's admin sends any user without staff status to its own login page. An expert is already
logged in; showing them a second login form is confusing, so they get "forbidden" instead.
"""

from __future__ import annotations

from functools import update_wrapper
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


class HistoturingAdminSite(admin.AdminSite):
    site_header = "histoturing administration"
    site_title = "histoturing"

    def _forbid_non_staff(self, request: HttpRequest) -> None:
        if request.user.is_authenticated and not self.has_permission(request):
            raise PermissionDenied("Study managers only.")

    def admin_view(self, view: Any, cacheable: bool = False) -> Any:
        inner = super().admin_view(view, cacheable)

        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            self._forbid_non_staff(request)
            response: HttpResponse = inner(request, *args, **kwargs)
            return response

        return update_wrapper(wrapper, view)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        self._forbid_non_staff(request)
        return super().login(request, extra_context)
