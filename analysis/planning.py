"""Sample sizes for a reader study's equivalence test: Hillis & Obuchowski's method for the OR model.
Pure: numpy and scipy, with the OR analysis's own quantiles and its minimum of readers (`analysis.mrmc`).

A pilot's variance components (from a finished study, or planning values from the literature) are scaled
to the planned cases and ratio of positive (synthetic) cases, and give the power of the two one-sided
tests of the mean reader AUC against 0.5 +- delta, and the readers or cases that reach a power.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from analysis.mrmc import MIN_EQUIVALENCE_READERS, SingleTreatment, cdf, quantile


@dataclass(frozen=True)
class Pilot:
    """What a sample-size estimate needs of one treatment, at `cases` cases (Hillis & Obuchowski)."""

    var_R: float  # between-reader variance of true AUCs
    var_error: float  # AUC variance over cases, at `cases`
    cov2: float  # covariance of two readers' AUCs over cases, at `cases`
    cases: int
    source: str
    positive_share: float = 0.5  # the share of positive (synthetic) cases the variances are for

    def with_share(self, share: float) -> Pilot:
        """The pilot's case variances for a design with another share of positive cases.

        At an AUC near 0.5 an AUC's case variance is about (1/n1 + 1/n0) / 12 (Hanley & McNeil), so at
        the same number of cases it scales as s(1 - s) of the pilot over that of the design: a 3:1
        study has a third more case variance than a 1:1 pilot says."""
        if not 0 < share < 1:
            raise ValueError(f"a share of positive cases must lie strictly between 0 and 1, got {share}")
        old = self.positive_share * (1 - self.positive_share)
        scale = old / (share * (1 - share))
        return replace(self, var_error=self.var_error * scale, cov2=self.cov2 * scale, positive_share=share)

    def at(self, readers: int, cases: int) -> tuple[float, float]:
        """Standard error of the reader-averaged AUC and its (Hillis) degrees of freedom."""
        scale = self.cases / cases  # case variances shrink as 1/cases
        var_e, cov2 = self.var_error * scale, max(self.cov2 * scale, 0.0)
        ms_r = self.var_R + var_e - cov2  # expected mean square for readers
        error = ms_r + readers * cov2
        df = math.inf if ms_r <= 0 else error**2 / (ms_r**2 / (readers - 1))
        return math.sqrt(error / readers), df


def pilot_from(single: SingleTreatment, n_cases: int, source: str, positive_share: float = 0.5) -> Pilot:
    var_r = max(single.ms_r - single.var_error + single.cov2, 0.0)
    return Pilot(var_r, single.var_error, single.cov2, n_cases, source, positive_share)


def default_pilot(cases: int = 100, positive_share: float = 0.5) -> Pilot:
    """Planning values when the project has no pilot study of its own.

    Case variance: Hanley & McNeil (1982) for an AUC of 0.5 with continuous ratings, n1 of the cases
    positive (`positive_share` of them) and n0 negative, Var = (0.25 + (n1 + n0 - 2) / 12) / (n1 n0).
    Covariance of two readers' errors: 0.35 of that (Obuchowski 1995 and Rockette et al. report
    inter-reader correlations of 0.3-0.5 in reader studies). Between-reader variance of true AUCs: 0.002
    (reader AUCs spread by about 0.045, the middle of the values reported by Obuchowski (2000) and
    Hillis & Obuchowski (2011)).
    """
    n1, n0 = cases * positive_share, cases * (1 - positive_share)
    var_error = (0.25 + (n1 + n0 - 2) / 12) / (n1 * n0)
    return Pilot(
        0.002, var_error, 0.35 * var_error, cases, "planning values from the literature", positive_share
    )


def equivalence_power(pilot: Pilot, readers: int, cases: int, delta: float, alpha: float = 0.05) -> float:
    """Power of the two one-sided tests (90% interval inside 0.5 +- delta) when the true AUC is 0.5;
    none below the verdict's minimum number of readers, where the rule never says "indistinguishable"."""
    if readers < MIN_EQUIVALENCE_READERS:
        return 0.0
    se, df = pilot.at(readers, cases)
    if se == 0:
        return 1.0
    q = quantile(1 - alpha, df)
    return max(0.0, 2 * cdf(delta / se - q, df) - 1)


def readers_needed(
    pilot: Pilot, cases: int, delta: float, *, power: float = 0.8, alpha: float = 0.05, most: int = 200
) -> int | None:
    """Fewest readers (of `cases` cases each) for the equivalence test to reach `power`; None past `most`.
    Power grows with readers (the standard error falls and the degrees of freedom rise)."""
    return _fewest(
        MIN_EQUIVALENCE_READERS, most, lambda r: equivalence_power(pilot, r, cases, delta, alpha) >= power
    )


def cases_needed(
    pilot: Pilot, readers: int, delta: float, *, power: float = 0.8, alpha: float = 0.05, most: int = 20_000
) -> int | None:
    """Fewest cases (read by each of `readers`) for the equivalence test to reach `power`, or None."""
    return _fewest(4, most, lambda k: equivalence_power(pilot, readers, k, delta, alpha) >= power)


def _fewest(low: int, high: int, enough: Callable[[int], bool]) -> int | None:
    """The smallest n from `low` to `high` that is `enough`, by bisection (enough from some n on), or None."""
    if not enough(high):
        return None
    while low < high:
        mid = (low + high) // 2
        if enough(mid):
            high = mid
        else:
            low = mid + 1
    return low
