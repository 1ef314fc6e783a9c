"""Typed readers of environment variables.

Every setting that comes from the environment is read here, through one of these helpers, so that
a wrong value fails at start-up with `ImproperlyConfigured` naming the variable instead of surfacing
later as a puzzling error deep in a request or a task.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Env:
    """Reads variables from a mapping (the process environment by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        return None if value is None else value.strip()

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        return default if value in (None, "") else value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off"
        )

    def integer(self, name: str, default: int, *, minimum: int | None = None) -> int:
        return int(self._numeric(name, default, int, "a whole number", minimum))

    def number(self, name: str, default: float, *, minimum: float | None = None) -> float:
        return self._numeric(name, default, float, "a number", minimum)

    def _numeric(
        self, name: str, default: float, parse: Callable[[str], float], what: str, minimum: float | None
    ) -> float:
        value = self.raw(name)
        if value in (None, ""):
            return default
        assert value is not None
        try:
            number = parse(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name}={value!r} is not {what}") from None
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name}={number} is below its minimum of {minimum}")
        return number

    def items(self, name: str, default: list[str]) -> list[str]:
        value = self.raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def path(self, name: str, default: Path) -> Path:
        value = self.raw(name)
        if value in (None, ""):
            return default
        path = Path(value).expanduser()
        if not path.is_absolute():
            raise ImproperlyConfigured(f"{name}={value!r} must be an absolute path")
        return path

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(name, default)
        assert value is not None
        if value not in choices:
            raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}")
        return value
