from __future__ import annotations

from django.http import HttpRequest

from core.roles import is_study_manager


def roles(request: HttpRequest) -> dict[str, bool]:
    return {"is_study_manager": is_study_manager(request.user)}
