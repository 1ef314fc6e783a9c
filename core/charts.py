"""Charts drawn on the server as SVG, with matplotlib's non-interactive backend."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

matplotlib.rcParams["svg.hashsalt"] = "histoturing"  # stable ids: the same data gives the same bytes


def line_chart_svg(
    *,
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    title: str,
    x_label: str,
    y_label: str,
    width_in: float = 7.0,
    height_in: float = 3.2,
) -> bytes:
    figure, axes = plt.subplots(figsize=(width_in, height_in))
    try:
        for label, values in series.items():
            axes.plot(x, values, label=label, linewidth=1.2)
        axes.set_title(title)
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        axes.grid(alpha=0.3)
        if series and len(x):
            axes.legend(loc="upper right", fontsize="small")
        else:
            axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes.transAxes)
        return _svg(figure)
    finally:
        plt.close(figure)


def _svg(figure: Any) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def stacked_share_chart_svg(
    *, groups: dict[str, tuple[float, float]], labels: tuple[str, str], title: str
) -> bytes:
    """One bar per group, split into two shares that add to 1 (like the paper's Fig. 5)."""
    figure, axes = plt.subplots(figsize=(6.0, 3.2))
    try:
        names = list(groups)
        first = [groups[n][0] for n in names]
        second = [groups[n][1] for n in names]
        axes.bar(names, first, color="#1f4e9c", label=labels[0])
        axes.bar(names, second, bottom=first, color="#e0a040", label=labels[1])
        for index, value in enumerate(first):
            axes.text(
                index, value / 2, f"{value:.0%}", ha="center", va="center", color="white", fontsize="small"
            )
            if second[index]:
                axes.text(
                    index,
                    value + second[index] / 2,
                    f"{second[index]:.0%}",
                    ha="center",
                    va="center",
                    fontsize="small",
                )
        axes.set_ylim(0, 1)
        axes.set_ylabel("share of answers")
        axes.set_title(title)
        axes.legend(loc="upper right", fontsize="small")
        return _svg(figure)
    finally:
        plt.close(figure)


def histogram_svg(*, values: list[float], bins: int, title: str, x_label: str) -> bytes:
    figure, axes = plt.subplots(figsize=(6.0, 3.0))
    try:
        if values:
            axes.hist(values, bins=bins, range=(0, 1), color="#1f4e9c", edgecolor="white")
        else:
            axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes.transAxes)
        axes.set_title(title)
        axes.set_xlabel(x_label)
        axes.set_ylabel("synthetic images")
        return _svg(figure)
    finally:
        plt.close(figure)
