from __future__ import annotations

from django.http import HttpRequest

from core.roles import is_administrator, is_study_manager


def roles(request: HttpRequest) -> dict[str, bool]:
    return {
        "is_study_manager": is_study_manager(request.user),
        "is_administrator": is_administrator(request.user),
    }
