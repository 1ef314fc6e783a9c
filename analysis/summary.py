"""A study's result in plain sentences: each follows from the protocol's rule and the figures, and no
more. Pure: no Django."""

from __future__ import annotations

from analysis.report import StudyStatistics
from analysis.stats import REAL, SYNTHETIC, format_p, format_share


def plain_summary(result: StudyStatistics) -> list[str]:
    """Sentences that follow from the protocol's rule and the figures, and no more."""
    if not result.n_answers:
        return ["No answers yet."]
    lines = [result.verdict.headline]
    if result.verdict.advice:
        lines.append(result.verdict.advice)
    b = result.bias_test
    if (
        b.significant
        and b.mean_criterion is not None
        and b.called_real is not None
        and b.real_share is not None
    ):
        lean = "real" if b.mean_criterion > 0 else "synthetic"
        lines.append(
            f'Readers leaned towards answering "{lean}": they called {format_share(b.called_real)} of all '
            f"patches real, of which {format_share(b.real_share)} were (mean criterion c = "
            f"{b.mean_criterion:.2f}, t test across readers {format_p(b.p_value)})."
        )
    for truth, prop, verb in (
        (REAL, result.pooled.real, "called real"),
        (SYNTHETIC, result.pooled.synthetic, "called synthetic"),
    ):
        if prop.share is None:
            lines.append(f"No {truth} patches were answered.")
            continue
        lo, hi = prop.clopper_pearson or (0.0, 1.0)
        lines.append(
            f"Answer level: {truth} patches were {verb} {format_share(prop.share)} of the time "
            f"({prop.successes} of {prop.n}; 95% CI {format_share(lo)} to {format_share(hi)}; exact binomial "
            f"test against 50%, {format_p(prop.p_value)}, treating answers as independent)."
        )
    return lines
