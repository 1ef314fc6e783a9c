"""How the report prints numbers: p-values never as 0.0000, shares with one decimal."""

from __future__ import annotations

from typing import Any

from django import template

from analysis.stats import format_p, format_share

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


@register.filter
def seconds_band(low: float, high: float) -> str:
    """A band of reading times with as many decimals as tell its ends apart ("0.62 to 0.68 s" with an
    en dash, never "0.6 to 0.6 s"); one value where they are equal."""
    for decimals in (1, 2, 3):
        a, b = f"{low:.{decimals}f}", f"{high:.{decimals}f}"
        if a != b:
            return f"{a}\N{EN DASH}{b} s"
    return f"{low:.1f} s"
