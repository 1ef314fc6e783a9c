"""Charts drawn on the server as SVG, with matplotlib's non-interactive backend."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

matplotlib.rcParams["svg.hashsalt"] = "histoturing"  # stable ids: the same data gives the same bytes
# Legible where a chart is shown at its own size in a report (matplotlib's 10 pt read small there).
matplotlib.rcParams["font.size"] = 12


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
    with _chart((width_in, height_in)) as axes:
        for label, values in series.items():
            axes.plot(x, values, label=label, linewidth=1.2)
        axes.set(title=title, xlabel=x_label, ylabel=y_label)
        axes.grid(alpha=0.3)
        if series and len(x):
            axes.legend(loc="upper right", fontsize="small")
        else:
            _no_data(axes)
        return _svg(axes)


@contextmanager
def _chart(size: tuple[float, float]) -> Iterator[Axes]:
    """One figure of `size` inches with one axes; closed whatever happens (pyplot keeps figures open)."""
    figure, axes = plt.subplots(figsize=size)
    try:
        yield axes
    finally:
        plt.close(figure)


def _no_data(axes: Axes) -> None:
    axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes.transAxes)


def _svg(axes: Axes) -> bytes:
    figure = axes.get_figure()
    assert isinstance(figure, Figure)  # `_chart` makes top-level figures
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def stacked_share_chart_svg(
    *, groups: dict[str, tuple[float, float]], labels: tuple[str, str], title: str
) -> bytes:
    """One bar per group, split into two shares that add to 1 (like the paper's Fig. 5)."""
    with _chart((6.0, 3.2)) as axes:
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
        axes.set(ylabel="share of answers", title=title)
        axes.legend(loc="upper right", fontsize="small")
        return _svg(axes)


def histogram_svg(*, values: list[float], bins: int, title: str, x_label: str) -> bytes:
    with _chart((6.0, 3.0)) as axes:
        if values:
            axes.hist(values, bins=bins, range=(0, 1), color="#1f4e9c", edgecolor="white")
        else:
            _no_data(axes)
        axes.set(title=title, xlabel=x_label, ylabel="synthetic images")
        return _svg(axes)


def overlaid_histograms_svg(
    *, series: Mapping[str, Sequence[float]], line: float | None, title: str, x_label: str
) -> bytes:
    """Distributions side by side as density histograms over shared bins, and an optional threshold."""
    with _chart((6.4, 3.2)) as axes:
        values = [v for vs in series.values() for v in vs]
        if values:
            bins = np.linspace(min(values), max(values) or 1.0, 31).tolist()
            for (name, vs), colour in zip(series.items(), ("#e0a040", "#1f4e9c"), strict=False):
                axes.hist(vs, bins=bins, density=True, alpha=0.6, color=colour, label=name)
            if line is not None:
                axes.axvline(line, color="#b03a2e", linestyle="--", linewidth=1, label="near-copy threshold")
            axes.legend(fontsize="small")
        else:
            _no_data(axes)
        axes.set(title=title, xlabel=x_label, ylabel="density")
        return _svg(axes)


def heatmap_svg(*, points: Sequence[tuple[float, float]], bins: int, title: str) -> bytes:
    """Where on the patch readers clicked: counts on a bins x bins grid, (0, 0) the top-left corner."""
    with _chart((4.2, 4.0)) as axes:
        grid = np.zeros((bins, bins))
        for x, y in points:
            grid[min(int(y * bins), bins - 1), min(int(x * bins), bins - 1)] += 1
        shown = axes.imshow(grid, cmap="magma", extent=(0, 1, 1, 0), interpolation="nearest")
        axes.figure.colorbar(shown, ax=axes, label="clicks")  # not pyplot's: its "current figure" is global
        axes.set(title=title, xlabel="across the patch", ylabel="down the patch")
        if not points:
            axes.text(
                0.5, 0.5, "no clicks yet", ha="center", va="center", color="white", transform=axes.transAxes
            )
        return _svg(axes)


def roc_curves_svg(
    *,
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    mean: tuple[Sequence[float], Sequence[float]] | None,
) -> bytes:
    """One ROC curve per reader (thin) and the reader-averaged curve (thick), with the chance line."""
    with _chart((4.6, 4.4)) as axes:
        axes.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=0.8, label="chance (AUC 0.5)")
        for name, (fpr, tpr) in curves.items():
            axes.plot(fpr, tpr, linewidth=0.8, alpha=0.7, label=name if len(curves) <= 8 else None)
        if mean is not None:
            axes.plot(mean[0], mean[1], color="#1f4e9c", linewidth=2.4, label="reader average")
        if not curves:
            _no_data(axes)
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.set_aspect("equal")
        axes.set(
            xlabel="real patches called synthetic (false-positive rate)",
            ylabel="synthetic patches called synthetic",
            title="ROC of the 'how synthetic' ratings",
        )
        axes.legend(loc="lower right", fontsize="small")
        return _svg(axes)


def forest_svg(*, rows: Sequence[tuple[str, float, float, float]], reference: float, x_label: str) -> bytes:
    """Estimates with intervals, one row each (the last one drawn as the summary), and a reference line."""
    with _chart((6.0, 0.9 + 0.32 * max(len(rows), 1))) as axes:
        for index, (_label, estimate, low, high) in enumerate(rows):
            y = len(rows) - index
            summary = index == len(rows) - 1
            colour = "#1f4e9c" if summary else "#333333"
            axes.plot([low, high], [y, y], color=colour, linewidth=2.2 if summary else 1.2)
            axes.plot(
                [estimate], [y], marker="D" if summary else "s", color=colour, markersize=7 if summary else 5
            )
        axes.axvline(reference, color="#999999", linestyle="--", linewidth=0.8)
        axes.set_yticks(range(len(rows), 0, -1), [r[0] for r in rows], fontsize="small")
        axes.set_xlim(0, 1)
        axes.set_xlabel(x_label)
        if not rows:
            _no_data(axes)
        return _svg(axes)


def grouped_bars_svg(
    *, groups: Mapping[str, Sequence[int]], categories: Sequence[str], title: str, y_label: str
) -> bytes:
    """Side-by-side bars of counts per category, one colour per group."""
    with _chart((6.4, 3.0)) as axes:
        width = 0.8 / max(len(groups), 1)
        colours = ["#1f4e9c", "#e0a040", "#5a9e5a", "#9e5a9e"]
        for g, (name, counts) in enumerate(groups.items()):
            xs = [i + (g - (len(groups) - 1) / 2) * width for i in range(len(categories))]
            axes.bar(xs, counts, width=width, label=name, color=colours[g % len(colours)])
        axes.set_xticks(range(len(categories)), categories, fontsize="small")
        axes.set(ylabel=y_label, title=title)
        axes.legend(fontsize="small")
        return _svg(axes)
