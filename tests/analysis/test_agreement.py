"""Within-reader agreement: the share of repeat reads that agree and Cohen's kappa, against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from analysis.agreement import ReadPair, agreement, within_reader


def _pairs(reader: str, firsts: list[str], seconds: list[str]) -> list[ReadPair]:
    return [ReadPair(reader, str(i), a, b) for i, (a, b) in enumerate(zip(firsts, seconds, strict=True))]


@pytest.mark.parametrize("seed", range(5))
def test_kappa_and_share_match_scikit_learn_per_reader_and_pooled(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pairs = []
    for reader in ("R1", "R2", "R3"):
        first = rng.choice(["real", "synthetic"], size=25).tolist()
        second = [a if rng.random() < 0.7 else rng.choice(["real", "synthetic"]) for a in first]
        pairs += _pairs(reader, first, second)
    result = within_reader(pairs)
    for reader, a in result.readers.items():
        mine = [p for p in pairs if p.reader == reader]
        assert a.pairs == 25 and a.agreeing == sum(p.first == p.second for p in mine)
        assert a.kappa == pytest.approx(cohen_kappa_score([p.first for p in mine], [p.second for p in mine]))
        assert a.kappa_ci is not None and a.kappa_ci[0] < a.kappa < a.kappa_ci[1]
        assert a.share_ci is not None and a.share_ci[0] <= a.share <= a.share_ci[1]
    assert result.pooled.pairs == 75
    assert result.pooled.kappa == pytest.approx(
        cohen_kappa_score([p.first for p in pairs], [p.second for p in pairs])
    )


def test_kappa_is_undefined_with_one_label_and_says_so() -> None:
    same = agreement(_pairs("R1", ["real"] * 6, ["real"] * 6))
    assert same.share == 1.0 and same.kappa is None and "undefined" in same.reason
    opposite = agreement(_pairs("R1", ["real"] * 6, ["synthetic"] * 6))
    assert opposite.share == 0.0 and opposite.kappa == 0.0 and opposite.kappa_ci is None
    empty = agreement([])
    assert empty.share is None and empty.reason == "no item was read twice"
