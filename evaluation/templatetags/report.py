"""How the report prints numbers: p-values never as 0.0000, shares with one decimal."""

from __future__ import annotations

from django import template

from evaluation.stats import format_p, format_share

register = template.Library()


@register.filter
def pvalue(value: float | None) -> str:
    return format_p(value)


@register.filter
def pct(value: float | None) -> str:
    return format_share(value)
