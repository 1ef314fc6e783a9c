"""The three roles.

- Experts (group `experts`) read the studies they are invited to.
- Study managers (group `study managers`, staff but not superusers) do everything a study needs:
  import, train, sample, build, invite, read results. In the admin their group's permissions cover the
  project's own models; answers, study items and the audit trail stay read-only for everyone.
- Administrators (superusers) also manage accounts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission

EXPERTS_GROUP = "experts"
MANAGERS_GROUP = "study managers"
# The apps whose models study managers may work with in the admin (never `auth`: accounts are the
# administrators').
MANAGED_APPS = ("core", "gan", "turing", "evaluation")

# Who acts: a signed-in account, or an anonymous visitor; None where nobody does (a command, a job).
UserLike = User | AnonymousUser


def account(user: UserLike) -> User:
    """The signed-in account a request acts as; refused (403) for an anonymous visitor. Views that
    require a sign-in pass `request.user` through this to the services, which take accounts only."""
    if not isinstance(user, User) or not user.is_authenticated:
        raise PermissionDenied("Sign in first.")
    return user


def signed_in(user: Any) -> Any:
    """`user` when it is a signed-in account, else None (an anonymous user, or nobody: a command)."""
    return user if getattr(user, "is_authenticated", False) else None


def is_study_manager(user: Any) -> bool:
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return bool(user.is_superuser or user.groups.filter(name=MANAGERS_GROUP).exists())


def is_administrator(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_superuser)


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
