"""Within-reader agreement from repeat reads. Pure: no Django.

A study may show a share of each reader's items a second time (`turing.models.Study.repeat_share`);
each (first read, second read) pair of labels says whether the reader answered the same patch the same
way. Per reader and pooled over readers: the share of pairs that agree (Wilson 95% interval) and
Cohen's kappa between the two reads (statsmodels, with its asymptotic 95% interval), the same kappa the
report uses between readers. The pooled kappa is computed on every reader's pairs together. Only first
reads enter the primary analysis; these figures describe how reproducible the readers' calls were.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from statsmodels.stats import inter_rater, proportion

from analysis.stats import REAL, SYNTHETIC


@dataclass(frozen=True)
class ReadPair:
    """One item a reader read twice: the label of each read."""

    reader: str
    item: str
    first: str
    second: str


@dataclass(frozen=True)
class Agreement:
    """Agreement between first and second reads over `pairs` items."""

    pairs: int
    agreeing: int
    share: float | None
    share_ci: tuple[float, float] | None  # Wilson 95%
    kappa: float | None
    kappa_ci: tuple[float, float] | None  # asymptotic 95% (statsmodels)
    reason: str = ""  # why kappa is None


@dataclass(frozen=True)
class WithinReader:
    readers: dict[str, Agreement]
    pooled: Agreement


def _table(pairs: Sequence[ReadPair]) -> np.ndarray:
    """2x2 counts: rows the first read, columns the second (real, synthetic)."""
    index = {REAL: 0, SYNTHETIC: 1}
    table = np.zeros((2, 2))
    for pair in pairs:
        table[index[pair.first], index[pair.second]] += 1
    return table


def agreement(pairs: Sequence[ReadPair]) -> Agreement:
    n = len(pairs)
    if n == 0:
        return Agreement(0, 0, None, None, None, None, "no item was read twice")
    table = _table(pairs)
    agreeing = int(table[0, 0] + table[1, 1])
    low, high = proportion.proportion_confint(agreeing, n, alpha=0.05, method="wilson")
    kappa: float | None
    ci = None
    reason = ""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        result = inter_rater.cohens_kappa(table)
    kappa = float(result["kappa"])
    if not math.isfinite(kappa):
        kappa, reason = None, "every read gave the same label: kappa is undefined"
    elif (
        result["std_kappa"] > 0 and math.isfinite(result["kappa_low"]) and math.isfinite(result["kappa_upp"])
    ):
        ci = (max(float(result["kappa_low"]), -1.0), min(float(result["kappa_upp"]), 1.0))  # kappa's range
    return Agreement(n, agreeing, agreeing / n, (float(low), float(high)), kappa, ci, reason)


def within_reader(pairs: Sequence[ReadPair]) -> WithinReader:
    readers = sorted({p.reader for p in pairs})
    return WithinReader(
        readers={r: agreement([p for p in pairs if p.reader == r]) for r in readers},
        pooled=agreement(pairs),
    )
