"""Several generators in one study: each synthetic arm against the shared real patches, and the arms
against each other. Pure: no Django, plain records in, plain values out.

Every arm is a treatment of one Obuchowski-Rockette analysis (`analysis.mrmc`) whose cases are the
study's real items plus that arm's synthetic items (`case_mask`): the arms share the real cases, so their
AUCs are correlated through them, and the OR model accounts for that and for readers. A reader's rating
of an item is the same whichever arm it is analysed in.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from analysis import mrmc
from analysis.stats import (
    REAL,
    SYNTHETIC,
    Clustered,
    Proportion,
    Protocol,
    Record,
    TuringMRMC,
    Verdict,
    clustered,
    complete_readers,
    format_p,
    holm_adjusted,
    proportion_summary,
    rating,
    verdict,
)

ARMS_RULE = (
    "With several synthetic arms the verdict above pools them all. Each arm is then judged by the same "
    "rule against the shared real patches at alpha {alpha_arm} ({alpha} / {n} arms, Bonferroni). Arms are "
    "compared pairwise by the OR test of the difference of their AUCs (arms as treatments sharing the real "
    "cases; random readers and cases), Holm-adjusted across the {pairs} pair(s) at {alpha}: an arm is said "
    "to be harder to detect than another only when that test is significant."
)


@dataclass(frozen=True)
class ArmResult:
    arm: str
    n_items: int  # the arm's synthetic items that were answered
    fool_rate: Proportion  # the arm's synthetic answers called real
    detected: Proportion  # the arm's synthetic answers called synthetic (accuracy on its patches)
    clustered: Clustered  # GEE over the real answers and this arm's: its `synthetic` is the accuracy here
    auc: float | None  # reader-averaged AUC of this arm's patches against the real ones
    rrrc: mrmc.Interval | None
    verdict: Verdict  # the study's rule at alpha / number of arms


@dataclass(frozen=True)
class ArmComparison:
    first: str
    second: str
    difference: float  # AUC(first) - AUC(second): > 0 means `second` fooled readers more
    rrrc: mrmc.Interval | None
    p_holm: float | None
    harder_to_detect: str | None  # the arm readers detected less, when the adjusted test shows it
    sentence: str


@dataclass
class ArmAnalysis:
    arms: list[ArmResult]
    comparisons: list[ArmComparison]
    rule: str
    result: mrmc.MRMCResult | None = None
    readers: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def several(self) -> bool:
        return len(self.arms) > 1


def arm_names(records: Sequence[Record]) -> list[str]:
    """The arms that have synthetic answers, in order of first appearance."""
    return list(dict.fromkeys(r.arm for r in records if r.truth == SYNTHETIC and r.arm))


def arm_analysis(
    records: Sequence[Record],
    *,
    arms: Sequence[str] | None = None,
    cases: Sequence[str] | None = None,
    protocol: Protocol | None = None,
    unavailable: str = "",
) -> ArmAnalysis:
    """Per-arm figures and pairwise comparisons. `arms`: the study's arms in order (default: those with
    answers); `cases`: the study's items (default: every item answered by anyone)."""
    protocol = protocol or Protocol()
    names = list(arms) if arms is not None else arm_names(records)
    n_arms = max(len(names), 1)
    alpha_arm = protocol.alpha / n_arms
    pairs = n_arms * (n_arms - 1) // 2
    rule = ARMS_RULE.format(alpha_arm=f"{alpha_arm:g}", alpha=f"{protocol.alpha:g}", n=n_arms, pairs=pairs)
    real = [r for r in records if r.truth == REAL]
    per_arm = {name: [r for r in records if r.truth == SYNTHETIC and r.arm == name] for name in names}
    analysis, uninformative = _mrmc(records, names, cases, protocol.alpha, unavailable)
    results = []
    for t, name in enumerate(names):
        mine = per_arm[name]
        called_real = sum(r.label == REAL for r in mine)
        arm_view = _arm_view(analysis, t, name, uninformative)
        single = arm_view.result.single[0] if arm_view.result is not None else None
        results.append(
            ArmResult(
                arm=name,
                n_items=len({r.item for r in mine}),
                fool_rate=proportion_summary(called_real, len(mine)),
                detected=proportion_summary(len(mine) - called_real, len(mine)),
                clustered=clustered(real + mine),
                auc=single.auc_mean if single else None,
                rrrc=single.rrrc if single else None,
                verdict=verdict(arm_view, Protocol(margin=protocol.margin, alpha=alpha_arm)),
            )
        )
    return ArmAnalysis(
        arms=results,
        comparisons=_comparisons(analysis.result, protocol.alpha),
        rule=rule,
        result=analysis.result,
        readers=analysis.readers,
        reason=analysis.reason,
    )


def _mrmc(
    records: Sequence[Record],
    names: Sequence[str],
    cases: Sequence[str] | None,
    alpha: float,
    unavailable: str,
) -> tuple[TuringMRMC, list[bool]]:
    """The OR analysis with one treatment per arm over the readers who answered every case, and for each
    arm whether every reader gave all its cases one and the same rating."""
    readers, excluded, by_reader, cases = complete_readers(records, cases)
    none = [False] * len(names)
    if unavailable or not names:
        reason = unavailable or "the study has no synthetic arm"
        return TuringMRMC(None, None, [], excluded, 0, 0, reason), none
    if not readers:
        return TuringMRMC(
            None, None, [], excluded, len(cases), 0, "no reader has answered every item yet"
        ), none
    first = {r.item: r for r in records}
    truth = np.array([first[c].truth == SYNTHETIC for c in cases])
    arm_of = np.array([first[c].arm if first[c].truth == SYNTHETIC else "" for c in cases])
    scores = np.array(
        [[rating(by_reader[n][c].label, by_reader[n][c].confidence) for c in cases] for n in readers]
    )
    mask = np.array([~truth | (arm_of == name) for name in names])
    ratings = np.repeat(scores[None, :, :], len(names), axis=0)
    try:
        result = mrmc.analyse(
            ratings, truth, case_mask=mask, treatments=list(names), readers=readers, alpha=alpha
        )
    except mrmc.MRMCDesignError as exc:
        return TuringMRMC(None, None, readers, excluded, len(cases), 0, str(exc)), none
    uninformative = [bool((scores[:, m] == scores[:, m][:, :1]).all()) for m in mask]
    return TuringMRMC(result, None, readers, excluded, len(cases), 0), uninformative


def _arm_view(analysis: TuringMRMC, t: int, name: str, uninformative: list[bool]) -> TuringMRMC:
    """One arm's part of the analysis, shaped as the single-treatment analysis `verdict` reads."""
    if analysis.result is None:
        return analysis
    result = dataclasses.replace(analysis.result, single=[analysis.result.single[t]], treatments=[name])
    n_cases = analysis.result.n_positive[t] + analysis.result.n_negative[t]
    return TuringMRMC(
        result, None, analysis.readers, analysis.excluded, n_cases, 0, uninformative=uninformative[t]
    )


def _comparisons(result: mrmc.MRMCResult | None, alpha: float) -> list[ArmComparison]:
    if result is None or not result.differences:
        return []
    # The bounded RRRC test (variance never below the fixed-reader one), as the verdict's intervals.
    raw = [d.rrrc_bounded.p_value if d.rrrc_bounded is not None else None for d in result.differences]
    known = [p for p in raw if p is not None]
    adjusted = iter(holm_adjusted(known))
    comparisons = []
    for d, p in zip(result.differences, raw, strict=True):
        p_holm = next(adjusted) if p is not None else None
        estimate = d.frrc.estimate  # the same difference of mean AUCs under every method
        harder = None
        if p_holm is not None and p_holm < alpha and estimate != 0:
            harder = d.second if estimate > 0 else d.first
        comparisons.append(
            ArmComparison(
                d.first,
                d.second,
                estimate,
                d.rrrc_bounded,
                p_holm,
                harder,
                _sentence(d, estimate, p_holm, harder, alpha),
            )
        )
    return comparisons


def _sentence(
    d: mrmc.Difference, estimate: float, p_holm: float | None, harder: str | None, alpha: float
) -> str:
    figures = f"AUC difference {d.first} - {d.second} = {estimate:+.3f}"
    interval = d.rrrc_bounded
    if interval is None or p_holm is None:
        return f"{figures}; no random-reader test (it needs at least two readers who answered every item)."
    low, high = mrmc.interval_at(interval, 1 - alpha)
    figures += f", {100 * (1 - alpha):g}% CI {low:+.3f} to {high:+.3f}, Holm-adjusted {format_p(p_holm)}"
    if harder is None:
        return f"No difference between arms {d.first} and {d.second} is shown ({figures})."
    easier = d.first if harder == d.second else d.second
    return f"Arm {harder} was harder to detect than arm {easier} ({figures})."


def per_arm_fool_rates(records: Sequence[Record]) -> dict[str, dict[str, float]]:
    """Arm -> synthetic item -> the share of its readers who called it real (the managers' galleries)."""
    votes: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.truth == SYNTHETIC:
            votes[r.arm][r.item].append(r.label == REAL)
    return {arm: {item: sum(v) / len(v) for item, v in items.items()} for arm, items in votes.items()}
