"""Charts drawn on the server as SVG, with matplotlib's non-interactive backend."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

matplotlib.rcParams["svg.hashsalt"] = "histoturing"  # stable ids: the same data gives the same bytes


def line_chart_svg(
    *,
    x: Sequence[float],
    series: dict[str, Sequence[float]],
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
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
        return buffer.getvalue()
    finally:
        plt.close(figure)
