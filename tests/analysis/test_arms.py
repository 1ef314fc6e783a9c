"""Per-arm statistics and pairwise arm comparisons, on constructed answers."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import arms, mrmc, stats
from analysis.stats import REAL, SYNTHETIC, Record

READERS = ["R1", "R2", "R3", "R4", "R5"]


def _study(
    rng: np.random.Generator, p_detect: dict[str, float], per_pool: int = 20
) -> tuple[list[Record], list[str]]:
    """Real items and one block of items per arm; a reader calls an arm's item synthetic with its
    probability (real items: synthetic with probability 0.3), confidences at random."""
    pools = [("", REAL, 0.3)] + [(arm, SYNTHETIC, p) for arm, p in p_detect.items()]
    items = [(f"{arm or 'real'}-{k}", truth, arm, p) for arm, truth, p in pools for k in range(per_pool)]
    records = [
        Record(
            reader,
            item,
            truth,
            SYNTHETIC if rng.random() < p else REAL,
            int(rng.integers(1, 6)),
            "LYM",
            arm,
        )
        for reader in READERS
        for item, truth, arm, p in items
    ]
    return records, [item for item, *_ in items]


def test_an_arm_always_detected_is_easier_than_one_never_detected() -> None:
    records, cases = _study(np.random.default_rng(1), {"A": 1.0, "B": 0.3})
    result = arms.arm_analysis(records, cases=cases)
    by_name = {a.arm: a for a in result.arms}
    assert by_name["A"].fool_rate.share == 0 and by_name["A"].detected.share == 1
    assert by_name["A"].auc is not None and by_name["B"].auc is not None
    assert by_name["A"].auc > 0.8 and abs(by_name["B"].auc - 0.5) < 0.15
    (comparison,) = result.comparisons
    assert (comparison.first, comparison.second) == ("A", "B")
    assert comparison.difference > 0.2
    assert comparison.p_holm is not None and comparison.p_holm < 0.05
    assert comparison.harder_to_detect == "B"
    assert comparison.sentence.startswith("Arm B was harder to detect than arm A")
    assert by_name["A"].verdict.kind == "detectable"


def test_two_arms_alike_show_no_difference() -> None:
    records, cases = _study(np.random.default_rng(2), {"A": 0.5, "B": 0.5}, per_pool=30)
    (comparison,) = arms.arm_analysis(records, cases=cases).comparisons
    assert comparison.harder_to_detect is None
    assert comparison.p_holm is not None and comparison.p_holm > 0.05
    assert comparison.sentence.startswith("No difference between arms A and B is shown")


def test_per_arm_figures_equal_a_direct_computation() -> None:
    records, cases = _study(np.random.default_rng(3), {"A": 0.8, "B": 0.6, "C": 0.4}, per_pool=12)
    result = arms.arm_analysis(records, cases=cases)
    assert [a.arm for a in result.arms] == ["A", "B", "C"] and len(result.comparisons) == 3
    scores = {(r.reader, r.item): stats.rating(r.label, r.confidence) for r in records}
    real = [c for c in cases if c.startswith("real")]
    for arm in result.arms:
        mine = [r for r in records if r.arm == arm.arm]
        assert arm.fool_rate.successes == sum(r.label == REAL for r in mine)
        assert arm.fool_rate.n == len(mine) == len(READERS) * 12
        # The reader-averaged AUC of this arm's items against the real items, by the Mann-Whitney count.
        arm_cases = [c for c in cases if c.startswith(f"{arm.arm}-")]
        aucs = []
        for reader in READERS:
            pos = np.array([scores[reader, c] for c in arm_cases])
            neg = np.array([scores[reader, c] for c in real])
            aucs.append(
                ((pos[:, None] > neg).sum() + 0.5 * (pos[:, None] == neg).sum()) / (pos.size * neg.size)
            )
        assert arm.auc == pytest.approx(np.mean(aucs))
        # The same arm alone against the real items, in a one-treatment analysis: the same interval.
        ratings = np.array([[[scores[r, c] for c in real + arm_cases] for r in READERS]])
        truth = np.array([False] * len(real) + [True] * len(arm_cases))
        alone = mrmc.analyse(ratings, truth).single[0]
        assert arm.rrrc is not None and alone.rrrc is not None
        # Not to the last digit: the jackknife of the joint analysis leaves out every case of the study in
        # turn, and a case of another arm leaves this arm's AUC as it is but enters the (n - 1) / n factor.
        assert (arm.rrrc.low, arm.rrrc.high) == pytest.approx((alone.rrrc.low, alone.rrrc.high), abs=1e-3)
    # Each arm's verdict is judged at alpha / 3 and the rule says so.
    assert "0.0166667" in result.rule and "Bonferroni" in result.rule


def test_no_common_case_set_gives_reasons_not_figures() -> None:
    records, cases = _study(np.random.default_rng(4), {"A": 0.9, "B": 0.5})
    partial = [r for r in records if not (r.reader == "R1" and r.item == cases[0])]
    result = arms.arm_analysis(partial, cases=cases, unavailable="items were drawn per reader")
    assert result.result is None and result.comparisons == []
    assert all(a.auc is None and a.verdict.kind == "not available" for a in result.arms)
    assert all(a.fool_rate.n > 0 for a in result.arms)  # answer-level figures still stand


def test_gallery_fool_rates_per_arm() -> None:
    records = [
        Record("R1", "a1", SYNTHETIC, REAL, 3, "LYM", "A"),
        Record("R2", "a1", SYNTHETIC, SYNTHETIC, 3, "LYM", "A"),
        Record("R1", "b1", SYNTHETIC, REAL, 3, "LYM", "B"),
        Record("R2", "b1", SYNTHETIC, REAL, 3, "LYM", "B"),
        Record("R1", "r1", REAL, REAL, 3, "LYM"),
    ]
    assert arms.per_arm_fool_rates(records) == {"A": {"a1": 0.5}, "B": {"b1": 1.0}}


def test_each_arms_verdict_reads_its_interval_at_the_arms_own_level() -> None:
    """Two arms: each is judged at alpha / 2, so its interval is a 97.5% one, wider than the 95% one."""
    records, cases = _study(np.random.default_rng(4), {"A": 0.7, "B": 0.4}, per_pool=25)
    result = arms.arm_analysis(records, cases=cases)
    for t, arm in enumerate(result.arms):
        bounded = result.result.single[t].rrrc_bounded
        assert arm.verdict.ci == pytest.approx(mrmc.interval_at(bounded, 0.975))
        assert arm.verdict.ci[1] - arm.verdict.ci[0] > bounded.high - bounded.low
