"""The report page of a study, built from its figures (`analysis.report`): every table, sentence and
chart the template shows, so that the view only renders it."""

from __future__ import annotations

import base64
import hashlib
import math
from typing import Any

from django.core.cache import cache

from analysis import arms, report, stats, summary
from analysis.reading_time import reading_time
from core.charts import (
    forest_svg,
    grouped_bars_svg,
    heatmap_svg,
    histogram_svg,
    roc_curves_svg,
    stacked_share_chart_svg,
)
from evaluation import selectors
from turing.models import Study
from turing.selectors import study_record_head
from turing.services import study_shortcut_check, study_verify

FIGURES_VERSION = 1  # raise when the figures' code changes what a kept page would show


def study_report(*, study: Study) -> dict[str, Any]:
    """The report's context. Its figures (`study_figures_context`) are computed once per state of the
    study's record and kept (the record's head moves with every answer, event and profile, so a new
    answer makes new figures); the record's own check, the audit count and the checks made elsewhere
    are read at every view."""
    head = study_record_head(study_id=study.pk)
    key = (
        f"report:{study.pk}:{FIGURES_VERSION}:" + hashlib.sha256(f"{head}|{study.name}".encode()).hexdigest()
    )
    figures = cache.get(key)
    if figures is None:
        figures = study_figures_context(study=study)
        cache.set(key, figures, timeout=REPORT_KEPT_S)
    return figures | {
        "study": study,
        "events": study.events.count(),
        "record_changes": study_verify(study=study),
        "record_head": head,
        "record_entries": study.record.count(),
        "arms": list(study.arms.all()),
        "shortcut": study_shortcut_check(study=study),
        "copying": selectors.study_copying(study=study),
    }


REPORT_KEPT_S = 7 * 24 * 3600  # a kept page is replaced as soon as the record moves; this only bounds memory


def study_figures_context(*, study: Study) -> dict[str, Any]:
    """The report's figures and charts, all from the study's answers under its protocol."""
    records = selectors.study_records(study=study)
    result = selectors.study_figures(study=study, records=records)
    analysis = result.mrmc.result
    reader_auc = {}
    if analysis is not None:
        for r, reader in enumerate(analysis.readers):
            reader_auc[reader] = (analysis.auc[0][r], math.sqrt(max(analysis.auc_var[0][r], 0.0)))
    return {
        "result": result,
        "summary": summary.plain_summary(result),
        "single": analysis.single[0] if analysis is not None else None,
        "balanced": result.mrmc.balanced.single[0] if result.mrmc.balanced is not None else None,
        "per_reader": [
            (r, acc, result.bias_per_reader[r], reader_auc.get(r))
            for r, acc in sorted(result.per_reader.items())
        ],
        "cohen": [(f"{a} & {b}", k) for (a, b), k in result.cohen.items()],
        "per_class": sorted(result.per_class.items()),
        "fool_mean": sum(result.fool_rates.values()) / len(result.fool_rates) if result.fool_rates else None,
        "charts": report_charts(study, records, result),
        "rating_scale": stats.RATING_SCALE,
        # Every interval's printed level is the one the rule reading it uses.
        "level": f"{100 * (1 - result.protocol.alpha):g}",
        "level_tost": f"{100 * (1 - 2 * result.protocol.alpha):g}",
        "arm_level": f"{100 * (1 - result.protocol.alpha / max(len(result.arms.arms), 1)):g}"
        if result.arms
        else "",
        "reading": reading_time(records, study.too_fast_ms),
        "experience": selectors.experience_rows(study=study, result=result),
        "within_reader": selectors.study_within_reader(study=study),
        "reasons": selectors.reason_rows(study=study) if study.ask_reasons else [],
        "clicks": data_uri(
            heatmap_svg(points=selectors.study_clicks(study=study), bins=16, title="Where the giveaway was")
        )
        if study.ask_reasons
        else None,
    }


def arm_charts(analysis: arms.ArmAnalysis) -> dict[str, str]:
    """The arms side by side: each arm's AUC against the real patches, and how its patches were called."""
    rows = [
        (f"arm {a.arm}", a.auc, a.rrrc.low, a.rrrc.high)
        for a in analysis.arms
        if a.auc is not None and a.rrrc
    ]
    shares = {
        f"arm {a.arm}": (a.fool_rate.share or 0.0, a.detected.share or 0.0)
        for a in analysis.arms
        if a.fool_rate.n
    }
    return {
        "arms_auc": data_uri(
            forest_svg(
                rows=rows, reference=0.5, x_label="ROC AUC of each arm vs the real patches (95% RRRC CI)"
            )
        ),
        "arms_calls": data_uri(
            stacked_share_chart_svg(
                groups=shares,
                labels=("called real", "called synthetic"),
                title="Each arm's patches, as called",
            )
        ),
    }


def data_uri(svg: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def report_charts(
    study: Study, records: list[stats.Record], result: report.StudyStatistics
) -> dict[str, str]:
    by_reader: dict[str, list[stats.Record]] = {}
    for record in records:
        by_reader.setdefault(record.reader, []).append(record)
    curves = {name: points for name, rs in sorted(by_reader.items()) if (points := stats.roc_points(rs))}
    mean = stats.mean_roc([curves[name] for name in result.mrmc.readers if name in curves])
    rows: list[tuple[str, float, float, float]] = []
    analysis = result.mrmc.result
    level = f"{100 * (1 - result.protocol.alpha):g}%"
    if analysis is not None:
        rows += stats.reader_auc_intervals(analysis, result.protocol.alpha)
        single = analysis.single[0]
        if single.rrrc is not None:
            rows.append(("mean (RRRC)", single.auc_mean, single.rrrc.low, single.rrrc.high))
    charts = arm_charts(result.arms) if result.arms is not None else {}
    return charts | {
        "roc": data_uri(roc_curves_svg(curves=curves, mean=mean)),
        "forest": data_uri(
            forest_svg(
                rows=rows, reference=0.5, x_label=f"ROC AUC, synthetic vs real ({level} CI; 0.5 = chance)"
            )
        ),
        "ratings": data_uri(
            grouped_bars_svg(
                groups={f"{t} patches": c for t, c in stats.rating_counts(records).items()},
                categories=[str(k) for k in range(1, 11)],
                title="Ratings by truth (1 = surely real, 10 = surely synthetic)",
                y_label="answers",
            )
        ),
        "fig5": data_uri(answers_by_truth_svg(study, result)),
        "fool_rates": data_uri(fool_rates_svg(result)),
    }


def answers_by_truth_svg(study: Study, result: report.StudyStatistics) -> bytes:
    """Like the paper's Fig. 5: for each truth, the share of answers that called it correctly."""
    pooled = result.pooled
    groups = {
        f"{truth} patches": (p.share or 0.0, 1 - (p.share or 0.0) if p.n else 0.0)
        for truth, p in (("real", pooled.real), ("synthetic", pooled.synthetic))
    }
    return stacked_share_chart_svg(
        groups=groups,
        labels=("called correctly", "called incorrectly"),
        title=f"{study.name}: answers by truth",
    )


def fool_rates_svg(result: report.StudyStatistics) -> bytes:
    return histogram_svg(
        values=list(result.fool_rates.values()),
        bins=10,
        title="Fool rate of each synthetic image",
        x_label="share of readers who called it real",
    )
