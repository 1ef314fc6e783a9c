"""How the report prints numbers: p-values never as 0.0000, shares with one decimal."""

from __future__ import annotations

from typing import Any

from django import template

from evaluation.stats import format_p, format_share

register = template.Library()


@register.filter
def pvalue(value: float | None) -> str:
    return format_p(value)


@register.filter
def pct(value: float | None) -> str:
    return format_share(value)


@register.filter
def get_item(mapping: dict[str, Any] | None, key: str) -> Any:
    """A dictionary's value by a key held in a variable (templates cannot index by one)."""
    return (mapping or {}).get(key)
