"""Checks of input that several apps share: names a person types, ids a form posts."""

from __future__ import annotations

import unicodedata
from typing import Any

from django.core.exceptions import ValidationError

# The largest primary key the databases take (a signed 64-bit integer): a larger one posted by a form
# is a choice that cannot exist, not a database error.
DB_ID_MAX = 2**63 - 1


def has_control_characters(text: str) -> bool:
    """Line breaks, tabs, NUL and the other C0/C1 controls: never part of a name (a name with CR/LF
    could split an e-mail header or a CSV row)."""
    return any(unicodedata.category(c) == "Cc" for c in text)


def validate_name(value: str) -> None:
    if has_control_characters(value):
        raise ValidationError(
            "A name cannot hold control characters (line breaks, tabs and the like).", code="control"
        )


def fits_an_id(value: Any) -> bool:
    """Whether a posted value could be a primary key: digits alone (ASCII), from 1 to `DB_ID_MAX`."""
    text = str(value).strip()
    return text.isascii() and text.isdigit() and 1 <= int(text) <= DB_ID_MAX
