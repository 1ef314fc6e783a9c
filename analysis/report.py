"""A study's report as figures, with no Django: every statistic of the report from its answers under
its protocol (`study_statistics`), and, for a study of several arms, their comparison (`analysis.arms`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from analysis.arms import ArmAnalysis
from analysis.stats import (
    Accuracy,
    Bias,
    BiasTest,
    Clustered,
    Kappa,
    Protocol,
    Record,
    TuringMRMC,
    Verdict,
    accuracy,
    bias,
    bias_test,
    clustered,
    cohen_pairs,
    count_noun,
    fleiss,
    fool_rates,
    names_list,
    turing_mrmc,
    verdict,
)


@dataclass
class StudyStatistics:
    n_answers: int
    readers: list[str]
    protocol: Protocol
    pooled: Accuracy
    per_reader: dict[str, Accuracy]
    per_class: dict[str, Accuracy]
    bias_pooled: Bias
    bias_per_reader: dict[str, Bias]
    bias_test: BiasTest
    mrmc: TuringMRMC
    verdict: Verdict
    fleiss: Kappa
    cohen: dict[tuple[str, str], Kappa]
    fool_rates: dict[str, float]
    clustered: Clustered
    notes: list[str] = field(default_factory=list)
    arms: ArmAnalysis | None = None  # a study with several synthetic arms (`analysis.arms`)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cohen"] = {f"{a} & {b}": asdict(k) for (a, b), k in self.cohen.items()}
        return data


def study_statistics(
    records: Sequence[Record],
    *,
    protocol: Protocol | None = None,
    cases: Sequence[str] | None = None,
    unavailable: str = "",
) -> StudyStatistics:
    """Every figure of a study's report, from its answers, under the study's protocol."""
    protocol = protocol or Protocol()
    readers = sorted({r.reader for r in records})
    by_reader: dict[str, list[Record]] = defaultdict(list)
    by_class: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_reader[r.reader].append(r)
        if r.tissue_class:
            by_class[r.tissue_class].append(r)
    pooled = accuracy(records)
    analysis = turing_mrmc(records, cases=cases, alpha=protocol.alpha, unavailable=unavailable)
    per_reader_bias = {reader: bias(by_reader[reader]) for reader in readers}
    notes = []
    if not records:
        notes.append("No answers yet: every figure is undefined.")
    elif len(readers) == 1:
        notes.append(
            "One reader only: agreement, the clustered analysis and random-reader intervals need two."
        )
    if records:
        notes.append(
            "The binomial tests and their intervals are answer-level figures: they treat every answer as "
            "independent, while answers are clustered by reader and by item. The verdict comes from the "
            "MRMC analysis, which accounts for both."
        )
    if analysis.excluded:
        notes.append(
            f"The MRMC analysis includes the {count_noun(len(analysis.readers), 'reader')} who answered "
            f"every item; {names_list(analysis.excluded)} had not, and "
            f"{'is' if len(analysis.excluded) == 1 else 'are'} left out of it."
        )
    if (
        analysis.result is not None
        and analysis.result.single[0].var_error == 0
        and not analysis.uninformative
    ):
        notes.append(
            "The variance over items is zero (every reader's AUC is the same with any one item left out, as "
            "when readers separate perfectly): the interval then shows no uncertainty from the items, a "
            "known limit of the jackknife; read it with the number of items in mind."
        )
    if analysis.n_unrated:
        notes.append(
            f"{analysis.n_unrated} answer(s) had no confidence and were rated as confidence 1 of their label."
        )
    return StudyStatistics(
        n_answers=len(records),
        readers=readers,
        protocol=protocol,
        pooled=pooled,
        per_reader={reader: accuracy(by_reader[reader]) for reader in readers},
        per_class={c: accuracy(rs) for c, rs in sorted(by_class.items())},
        bias_pooled=bias(records),
        bias_per_reader=per_reader_bias,
        bias_test=bias_test(per_reader_bias, records, protocol.alpha),
        mrmc=analysis,
        verdict=verdict(analysis, protocol),
        fleiss=fleiss(records),
        cohen=cohen_pairs(records),
        fool_rates=fool_rates(records),
        clustered=clustered(records),
        notes=notes,
    )
