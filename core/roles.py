"""The two roles: study managers (staff users) and experts (members of the `experts` group)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission

EXPERTS_GROUP = "experts"

UserLike = AbstractBaseUser | AnonymousUser


def is_study_manager(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def is_expert(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.groups.filter(name=EXPERTS_GROUP).exists())


ViewFunc = TypeVar("ViewFunc", bound=Callable[..., Any])


def study_manager_required(view: ViewFunc) -> ViewFunc:
    """Anonymous users go to the login page; signed-in users who are not study managers get 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_study_manager(request.user):
            raise PermissionDenied("This page is for study managers.")
        return view(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class IsStudyManager(BasePermission):
    message = "This endpoint is for study managers."

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_study_manager(request.user)
