"""Path converters for every id in a URL: what does not fit a database key is a 404, never a 500.

Django's `int` converter takes any run of digits, and a 20-digit id overflows the database driver
(OverflowError, a server error) before any query runs. `id` takes 1 to 18 digits, which always fit a
signed 64-bit key; anything else (too long, negative, not a number) does not match the URL at all.
"""

from __future__ import annotations

from django.urls import register_converter


class IdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int | str) -> str:
        return str(value)


def register() -> None:
    register_converter(IdConverter, "id")
