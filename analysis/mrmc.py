"""Multi-reader multi-case (MRMC) ROC analysis: the Obuchowski-Rockette method. Pure: numpy and scipy.

Every reader rates every case of a treatment (here: an arm of synthetic patches against the real ones;
in a radiology study, an imaging modality). The outcome of reader r in treatment t is the trapezoidal
(Wilcoxon) AUC of their ratings, positive cases against negative ones. The OR model treats those AUCs
as a treatment effect plus random reader effects plus correlated errors whose covariance comes from
the cases:
- `var_error`: the error variance, the average of each AUC's variance over cases;
- `cov1`: the average covariance of one reader's AUCs in two treatments;
- `cov2`: of two readers' AUCs in one treatment;
- `cov3`: of two readers' AUCs in two treatments.
The case covariance is estimated by the jackknife (leave one case out; the default, as OR-DBM MRMC)
or by DeLong's structural components. Inference follows Hillis (2007) and Hillis, Berbaum and Metz
(2008), as OR-DBM MRMC 2.51 prints it:
- RRRC, random readers and random cases (the usual claim: to readers and cases like these): the
  F test with Hillis's denominator degrees of freedom, and single-treatment intervals;
- FRRC, fixed readers, random cases (to these readers): chi-square / normal;
- RRFC, random readers, fixed cases (to these cases): F / t with (t-1)(r-1) degrees of freedom.
`tests/evaluation/test_mrmc.py` reproduces every figure that OR-DBM MRMC 2.51 prints for the Van Dyke
and the Franken data sets (Franken reaches the truncations at zero that Van Dyke never does).

Designs: treatments may share every case (fully crossed), or share the negative cases while each has
its own positive cases (the arms of a Turing study: one real pool, each generator its own synthetic
patches); `case_mask` says which cases belong to which treatment, and the jackknife runs over the union
of cases (leaving out a case another treatment does not use leaves that treatment's AUC unchanged).
Within a treatment every reader must rate every one of its cases: anything else raises `MRMCDesignError`
naming the reader, never a silent number.

Written here rather than taken from a library: no maintained Python package implements OR/Hillis
(the references are R's RJafroc and MRMCaov and the Iowa OR-DBM MRMC program).

    python -m evaluation.mrmc FILE.csv [--json] [--covariance jackknife|delong] [--alpha 0.05]
                                       [--margin 0.1]

reads `reader,modality,case,truth,rating` rows (the layout of OR-DBM MRMC's and RJafroc's data files;
truth 1 = positive) and prints the analysis; with `--margin`, also the verdict of each treatment under
the rule `decide` applies (the one every study report uses).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import special, stats

Covariance = Literal["jackknife", "delong"]


class MRMCDesignError(ValueError):
    """Data that the OR analysis cannot take as it is; the message says what to change."""


@dataclass(frozen=True)
class Interval:
    estimate: float
    stderr: float
    df: float  # math.inf: normal quantiles
    low: float
    high: float
    p_value: float | None = None  # two-sided, of estimate = 0 (differences) where that is a question


def _interval(estimate: float, stderr: float, df: float, alpha: float, test: bool = False) -> Interval:
    q = quantile(1 - alpha / 2, df)
    p = None
    if test:
        p = _two_sided_p(estimate, stderr, df)
    return Interval(estimate, stderr, df, estimate - q * stderr, estimate + q * stderr, p)


def quantile(level: float, df: float) -> float:
    """The normal (df = inf) or t quantile."""
    # scipy.special's functions are the ones behind stats.norm / stats.t, without the argument checks
    # that cost ~0.2 ms a call: the planner calls this thousands of times per report.
    return float(special.ndtri(level) if math.isinf(df) else special.stdtrit(df, level))


def cdf(x: float, df: float) -> float:
    """The normal (df = inf) or t distribution function."""
    return float(special.ndtr(x) if math.isinf(df) else special.stdtr(df, x))


def _two_sided_p(estimate: float, stderr: float, df: float) -> float:
    if stderr == 0:
        return 0.0 if estimate != 0 else 1.0
    z = abs(estimate) / stderr
    return float(2 * (stats.norm.sf(z) if math.isinf(df) else stats.t.sf(z, df)))


def _bounded(rrrc: Interval, frrc_var: float, alpha: float, test: bool = False) -> Interval:
    """The RRRC interval, its variance never below the FRRC variance.

    Random readers add variance to fixed readers: the RRRC error variance estimates the FRRC one plus
    the reader variance. OR's estimate of it (MS(R) + r max(Cov2, 0)) can still come out below the FRRC
    variance when the readers' AUCs happen to lie closer together than case sampling alone would put
    them (an estimated reader variance below zero); OR-DBM MRMC prints it so (Franken: RRRC SE 0.0244,
    FRRC SE 0.0271), and with two readers it can be a tenth of it. A claim of equivalence must not rest
    on that, so the verdict takes the larger of the two variances, keeping the Hillis degrees of freedom
    of the unbounded term (the smaller, so the more cautious of the two choices).
    """
    if rrrc.stderr**2 >= frrc_var:
        return rrrc
    return _interval(rrrc.estimate, math.sqrt(frrc_var), rrrc.df, alpha, test)


def interval_at(interval: Interval, level: float) -> tuple[float, float]:
    """The same estimate's two-sided interval at another confidence level (e.g. 0.90 for a TOST)."""
    q = quantile(1 - (1 - level) / 2, interval.df)
    return interval.estimate - q * interval.stderr, interval.estimate + q * interval.stderr


@dataclass(frozen=True)
class Components:
    """OR variance components (Hillis 2007 notation)."""

    var_R: float  # between-reader variance of true AUCs
    var_TR: float  # treatment-by-reader interaction variance
    cov1: float
    cov2: float
    cov3: float
    var_error: float


@dataclass(frozen=True)
class SingleTreatment:
    treatment: str
    auc_mean: float
    var_error: float  # this treatment's average AUC variance over cases
    cov2: float  # this treatment's average covariance of two readers' AUCs
    ms_r: float  # this treatment's mean square for readers
    rrrc: Interval | None  # None with one reader: no reader variance can be estimated
    frrc: Interval
    rrfc: Interval | None
    # The RRRC interval with its variance raised to the FRRC variance where it fell below (see `_bounded`):
    # what a verdict rests on. `rrrc` stays as OR-DBM MRMC prints it.
    rrrc_bounded: Interval | None = None


@dataclass(frozen=True)
class Difference:
    first: str
    second: str
    rrrc: Interval | None
    frrc: Interval
    rrfc: Interval | None
    rrrc_bounded: Interval | None = None  # as `SingleTreatment.rrrc_bounded`


@dataclass
class MRMCResult:
    treatments: list[str]
    readers: list[str]
    n_positive: list[int]  # per treatment
    n_negative: list[int]
    covariance: str
    alpha: float
    auc: list[list[float]]  # [treatment][reader]
    auc_var: list[list[float]]  # [treatment][reader]: each AUC's variance over cases
    auc_mean: list[float]
    single: list[SingleTreatment]
    anova: dict[str, float] = field(default_factory=dict)  # MS_T, MS_R, MS_TR (two or more treatments)
    components: Components | None = None
    rrrc_test: dict[str, float] | None = None  # F, ddf, p, error_ms
    frrc_test: dict[str, float] | None = None  # chi2, df, p
    rrfc_test: dict[str, float] | None = None  # F, ddf, p
    differences: list[Difference] = field(default_factory=list)
    single_reader_differences: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return plain(asdict(self))


def plain(value: Any) -> Any:
    """JSON-safe: infinities as None."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


# --- AUCs and their case covariance ----------------------------------------------------------------


def _placements(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each positive, the negatives it outranks (ties count a half); for each negative, the
    positives that outrank it. Sums of psi(x, y) by ranks: O(n log n), not O(n_pos x n_neg)."""
    neg_sorted, pos_sorted = np.sort(neg), np.sort(pos)
    below = np.searchsorted(neg_sorted, pos, side="left")
    ties = np.searchsorted(neg_sorted, pos, side="right") - below
    v = below + 0.5 * ties  # [n_pos]
    above = len(pos) - np.searchsorted(pos_sorted, neg, side="right")
    ties_w = np.searchsorted(pos_sorted, neg, side="right") - np.searchsorted(pos_sorted, neg, side="left")
    w = above + 0.5 * ties_w  # [n_neg]
    return v, w


def auc_and_covariance(
    ratings: np.ndarray, truth: np.ndarray, case_mask: np.ndarray, covariance: Covariance = "jackknife"
) -> tuple[np.ndarray, np.ndarray]:
    """AUCs [T, R] and their case covariance [T*R, T*R] (rows in treatment-major order).

    ratings: [T, R, K]; truth: [K] bool (True = positive); case_mask: [T, K] bool.
    """
    n_t, n_r, _n_k = ratings.shape
    used = case_mask.any(axis=0)  # [K]: cases some treatment uses
    index = np.flatnonzero(used)
    k_used = len(index)
    auc = np.zeros((n_t, n_r))
    # Jackknife: AUC with each case left out, [T*R, K_used]; DeLong: each case's influence, same shape.
    rows = np.zeros((n_t * n_r, k_used))
    for t in range(n_t):
        pos_idx = np.flatnonzero(case_mask[t] & truth)
        neg_idx = np.flatnonzero(case_mask[t] & ~truth)
        n_pos, n_neg = len(pos_idx), len(neg_idx)
        pos_col = np.searchsorted(index, pos_idx)
        neg_col = np.searchsorted(index, neg_idx)
        for r in range(n_r):
            v, w = _placements(ratings[t, r, pos_idx], ratings[t, r, neg_idx])
            total = v.sum()
            theta = total / (n_pos * n_neg)
            auc[t, r] = theta
            row = rows[t * n_r + r]
            if covariance == "jackknife":
                row[:] = theta  # a case this treatment does not use leaves its AUC unchanged
                row[pos_col] = (total - v) / ((n_pos - 1) * n_neg)
                row[neg_col] = (total - w) / (n_pos * (n_neg - 1))
            else:
                row[pos_col] = (v / n_neg - theta) / n_pos
                row[neg_col] = (w / n_pos - theta) / n_neg
    if covariance == "jackknife":
        centred = rows - rows.mean(axis=1, keepdims=True)
        cov = (k_used - 1) / k_used * (centred @ centred.T)
    else:
        _delong_design(case_mask, truth)
        # DeLong's S10/m + S01/n: each structural component's sum of squares over (count - 1) of the
        # cases it runs over. Two treatments share all or none of their cases of one truth
        # (`_delong_design`), so a pair's count is either treatment's own; none shared gives zero products.
        n_pos = (case_mask & truth).sum(axis=1)  # [T]
        n_neg = (case_mask & ~truth).sum(axis=1)
        scale_p = np.repeat(n_pos / (n_pos - 1), n_r)[:, None]  # [T*R, 1]
        scale_q = np.repeat(n_neg / (n_neg - 1), n_r)[:, None]
        positive = truth[index]
        p, q = rows[:, positive], rows[:, ~positive]
        cov = scale_p * (p @ p.T) + scale_q * (q @ q.T)
    return auc, cov


def _delong_design(case_mask: np.ndarray, truth: np.ndarray) -> None:
    """DeLong's covariance of two treatments' AUCs is defined when they read the same cases of a truth
    or none in common (the arms of a Turing study share the negatives and have positives of their own);
    a partial overlap has no structural-component estimate, and the jackknife is the method for it."""
    for side, name in ((truth, "positive"), (~truth, "negative")):
        sets = case_mask & side  # [T, K]
        for t in range(len(sets)):
            for u in range(t + 1, len(sets)):
                shared = int((sets[t] & sets[u]).sum())
                if shared and not (sets[t] == sets[u]).all():
                    raise MRMCDesignError(
                        f"treatments {t + 1} and {u + 1} share {shared} of their {name} cases but not all: "
                        "DeLong's covariance needs all or none shared; use the jackknife"
                    )


def _mean_offdiag(block: np.ndarray) -> float:
    n = block.shape[0]
    if n < 2:
        return 0.0
    return float((block.sum() - np.trace(block)) / (n * (n - 1)))


# --- The OR analysis ---------------------------------------------------------------------------------


def analyse(
    ratings: np.ndarray,
    truth: np.ndarray,
    *,
    case_mask: np.ndarray | None = None,
    treatments: Sequence[str] | None = None,
    readers: Sequence[str] | None = None,
    covariance: Covariance = "jackknife",
    alpha: float = 0.05,
) -> MRMCResult:
    """The OR analysis of ratings [T, R, K] (higher = more likely positive) against truth [K]."""
    ratings = np.asarray(ratings, dtype=float)
    if ratings.ndim != 3:
        raise MRMCDesignError(f"ratings must be [treatments, readers, cases], got shape {ratings.shape}")
    truth = np.asarray(truth, dtype=bool)
    n_t, n_r, n_k = ratings.shape
    mask = np.ones((n_t, n_k), dtype=bool) if case_mask is None else np.asarray(case_mask, dtype=bool)
    treatments = list(treatments or [str(t + 1) for t in range(n_t)])
    readers = list(readers or [str(r + 1) for r in range(n_r)])
    if covariance not in ("jackknife", "delong"):
        raise MRMCDesignError(f"unknown covariance method {covariance!r}: use jackknife or delong")
    if truth.shape != (n_k,) or mask.shape != (n_t, n_k):
        raise MRMCDesignError("truth must have one value per case and case_mask one row per treatment")
    for t in range(n_t):
        n_pos, n_neg = int((mask[t] & truth).sum()), int((mask[t] & ~truth).sum())
        if n_pos < 2 or n_neg < 2:
            raise MRMCDesignError(
                f"treatment {treatments[t]} has {n_pos} positive and {n_neg} negative cases: "
                "the analysis needs at least 2 of each"
            )
        missing = np.isnan(ratings[t][:, mask[t]]).sum(axis=1)
        for r in np.flatnonzero(missing):
            raise MRMCDesignError(
                f"reader {readers[r]} did not rate {int(missing[r])} of the {int(mask[t].sum())} cases of "
                f"treatment {treatments[t]}: the OR analysis needs every reader to rate every case of a "
                "treatment (drop the reader, or keep only the cases every reader rated)"
            )
    auc, cov = auc_and_covariance(ratings, truth, mask, covariance)
    c4 = cov.reshape(n_t, n_r, n_t, n_r)
    result = MRMCResult(
        treatments=treatments,
        readers=readers,
        n_positive=[int((mask[t] & truth).sum()) for t in range(n_t)],
        n_negative=[int((mask[t] & ~truth).sum()) for t in range(n_t)],
        covariance=covariance,
        alpha=alpha,
        auc=auc.tolist(),
        auc_var=np.diag(cov).reshape(n_t, n_r).tolist(),
        auc_mean=auc.mean(axis=1).tolist(),
        single=[],
    )
    if n_r < 2:
        result.notes.append(
            "One reader: no between-reader variance can be estimated, so only the fixed-reader (FRRC) "
            "figures exist; conclusions hold for this reader only."
        )
    for t in range(n_t):
        block = c4[t, :, t, :]
        var_t, cov2_t = float(np.mean(np.diag(block))), _mean_offdiag(block)
        mean_t = float(auc[t].mean())
        ms_r = float(np.var(auc[t], ddof=1)) if n_r > 1 else 0.0
        # OR-DBM MRMC: FRRC StdErr = sqrt{1/r [Var(error) + (r-1) max(Cov2, 0)]}; RRRC StdErr =
        # sqrt{1/r [MS(R) + r max(Cov2, 0)]}, Df = [MS(R) + max(r Cov2, 0)]^2 / [MS(R)^2 / (r-1)].
        frrc_var = max((var_t + (n_r - 1) * max(cov2_t, 0.0)) / n_r, 0.0)
        frrc = _interval(mean_t, math.sqrt(frrc_var), math.inf, alpha)
        rrrc = rrfc = bounded = None
        if n_r > 1:
            error = ms_r + n_r * max(cov2_t, 0.0)
            df = math.inf if ms_r == 0 else error**2 / (ms_r**2 / (n_r - 1))
            rrrc = _interval(mean_t, math.sqrt(error / n_r), df, alpha)
            rrfc = _interval(mean_t, math.sqrt(ms_r / n_r), n_r - 1, alpha)
            bounded = _bounded(rrrc, frrc_var, alpha)
        result.single.append(
            SingleTreatment(treatments[t], mean_t, var_t, cov2_t, ms_r, rrrc, frrc, rrfc, bounded)
        )
    if n_t >= 2:
        _compare(result, auc, c4, alpha)
    return result


def _compare(result: MRMCResult, auc: np.ndarray, c4: np.ndarray, alpha: float) -> None:
    """ANOVA, variance components and the treatment comparisons (two or more treatments)."""
    n_t, n_r = auc.shape
    grand = auc.mean()
    t_means, r_means = auc.mean(axis=1), auc.mean(axis=0)
    ms_t = n_r * float(((t_means - grand) ** 2).sum()) / (n_t - 1)
    ms_r = n_t * float(((r_means - grand) ** 2).sum()) / (n_r - 1) if n_r > 1 else 0.0
    resid = auc - t_means[:, None] - r_means[None, :] + grand
    ms_tr = float((resid**2).sum()) / ((n_t - 1) * (n_r - 1)) if n_r > 1 else 0.0
    var_error = float(np.mean([c4[t, r, t, r] for t in range(n_t) for r in range(n_r)]))
    cov1 = float(
        np.mean([c4[t, r, u, r] for t in range(n_t) for u in range(n_t) if t != u for r in range(n_r)])
    )
    same_t = [c4[t, r, t, s] for t in range(n_t) for r in range(n_r) for s in range(n_r) if r != s]
    other = [
        c4[t, r, u, s]
        for t in range(n_t)
        for u in range(n_t)
        if t != u
        for r in range(n_r)
        for s in range(n_r)
        if r != s
    ]
    cov2 = float(np.mean(same_t)) if same_t else 0.0
    cov3 = float(np.mean(other)) if other else 0.0
    result.anova = {"MS_T": ms_t, "MS_R": ms_r, "MS_TR": ms_tr}
    result.components = Components(
        var_R=(ms_r - ms_tr) / n_t - cov1 + cov3,
        var_TR=ms_tr - var_error + cov1 + cov2 - cov3,
        cov1=cov1,
        cov2=cov2,
        cov3=cov3,
        var_error=var_error,
    )
    # FRRC: readers fixed.
    # OR-DBM MRMC and Hillis (2007): X2 = (t-1) MS(T) / [Var(error) - Cov1 + (r-1) max(Cov2 - Cov3, 0)]
    frrc_error = var_error - cov1 + (n_r - 1) * max(cov2 - cov3, 0.0)
    chi2 = (n_t - 1) * ms_t / frrc_error if frrc_error > 0 else math.inf
    result.frrc_test = {"chi2": chi2, "df": n_t - 1, "p": float(stats.chi2.sf(chi2, n_t - 1))}
    rrrc_error = ms_tr + n_r * max(cov2 - cov3, 0.0)
    if n_r > 1:
        ddf = math.inf if ms_tr == 0 else rrrc_error**2 / (ms_tr**2 / ((n_t - 1) * (n_r - 1)))
        f_rrrc = ms_t / rrrc_error if rrrc_error > 0 else math.inf
        p_rrrc = (
            float(stats.f.sf(f_rrrc, n_t - 1, ddf))
            if math.isfinite(ddf)
            else float(stats.chi2.sf(f_rrrc * (n_t - 1), n_t - 1))
        )
        result.rrrc_test = {"F": f_rrrc, "ddf": ddf, "p": p_rrrc, "error_ms": rrrc_error}
        rrfc_ddf = (n_t - 1) * (n_r - 1)
        f_rrfc = ms_t / ms_tr if ms_tr > 0 else math.inf
        result.rrfc_test = {"F": f_rrfc, "ddf": rrfc_ddf, "p": float(stats.f.sf(f_rrfc, n_t - 1, rrfc_ddf))}
    for i in range(n_t):
        for j in range(i + 1, n_t):
            estimate = float(t_means[i] - t_means[j])
            frrc_var = max(2 / n_r * frrc_error, 0.0)
            frrc = _interval(estimate, math.sqrt(frrc_var), math.inf, alpha, test=True)
            rrrc = rrfc = bounded = None
            if n_r > 1 and result.rrrc_test is not None:
                rrrc = _interval(
                    estimate, math.sqrt(2 / n_r * rrrc_error), result.rrrc_test["ddf"], alpha, True
                )
                rrfc = _interval(estimate, math.sqrt(2 / n_r * ms_tr), (n_t - 1) * (n_r - 1), alpha, True)
                bounded = _bounded(rrrc, frrc_var, alpha, test=True)
            result.differences.append(
                Difference(result.treatments[i], result.treatments[j], rrrc, frrc, rrfc, bounded)
            )
            for r in range(n_r):
                var = c4[i, r, i, r] + c4[j, r, j, r] - 2 * c4[i, r, j, r]
                each = _interval(
                    float(auc[i, r] - auc[j, r]), math.sqrt(max(var, 0.0)), math.inf, alpha, True
                )
                result.single_reader_differences.append(
                    {
                        "first": result.treatments[i],
                        "second": result.treatments[j],
                        "reader": result.readers[r],
                    }
                    | asdict(each)
                )


# An equivalence claim says the readers' mean AUC lies near 0.5, for readers like these. It rests on a
# reader variance estimated with r - 1 degrees of freedom and on the OR model's normal reader effects,
# which nothing in the data of two or three readers can check: where a minority of readers can tell
# (pathologists who know a generator's artefacts) a handful of readers often holds none of them. Four is
# the paper's design and the fewest this project lets speak of "readers like these"; below it the
# verdict is inconclusive. `bench/verdict_calibration.py` shows what the minimum does not cure: with a
# third of readers able to tell (mean AUC 0.6), false equivalence is 17-20% at 4 readers, 7-8% at 10
# and 5-6% at 20 (the rule's text says so). Under normal reader effects the bounded RRRC interval keeps
# it below alpha at every size. Detectable and reversed need no minimum.
MIN_EQUIVALENCE_READERS = 4


# --- The verdict's rule ------------------------------------------------------------------------------

Outcome = Literal["detectable", "reversed", "indistinguishable", "inconclusive"]

DECISION_RULE = (
    "Detectable: the {ci}% random-reader random-case (RRRC) interval of the mean reader AUC lies above "
    "0.5. Reversed: it lies below 0.5. Indistinguishable: the {ci2}% RRRC interval lies inside 0.5 ± "
    "{margin} (two one-sided tests at {alpha}) and at least {min_readers} readers were analysed (fewer "
    "sample the readers too thinly to speak of readers like these). Otherwise inconclusive. The RRRC "
    "variance is never taken below the fixed-reader variance, since random readers only add to it. The "
    "interval takes reader differences as roughly normal: where a few readers can tell and most cannot, "
    "a study of few readers can miss them, and an equivalence claim is the firmer the more readers it "
    "rests on."
)


@dataclass(frozen=True)
class Decision:
    """One treatment's outcome under the rule, and the intervals it rests on."""

    outcome: Outcome
    rule: str
    interval: tuple[float, float] | None  # the interval the outcome rests on, at `level`
    level: float | None
    ci: tuple[float, float] | None  # 1 - alpha: detectable / reversed
    ci_tost: tuple[float, float] | None  # 1 - 2 alpha: inside the margin or not
    within_margin: bool  # the 1 - 2 alpha interval lies inside 0.5 +- margin
    bounded: bool  # the RRRC variance was raised to the FRRC variance
    reason: str = ""  # why inconclusive


def decision_rule(*, margin: float, alpha: float, min_readers: int = MIN_EQUIVALENCE_READERS) -> str:
    return DECISION_RULE.format(
        ci=f"{100 * (1 - alpha):g}",
        ci2=f"{100 * (1 - 2 * alpha):g}",
        margin=f"{margin:.2f}",
        alpha=f"{alpha:g}",
        min_readers=min_readers,
    )


def decide(
    single: SingleTreatment,
    n_readers: int,
    *,
    margin: float,
    alpha: float,
    min_readers: int = MIN_EQUIVALENCE_READERS,
) -> Decision:
    """The rule applied to one treatment's mean reader AUC (0.5 = chance). Precedence: a difference from
    chance first (its interval excludes 0.5), then equivalence; `within_margin` says where a detected
    difference also lies inside the margin, so a sentence can say both."""
    rule = decision_rule(margin=margin, alpha=alpha, min_readers=min_readers)
    interval = single.rrrc_bounded
    if interval is None:
        return Decision(
            "inconclusive",
            rule,
            None,
            None,
            None,
            None,
            False,
            False,
            "one reader: the random-reader analysis needs at least two",
        )
    ci = interval_at(interval, 1 - alpha)  # at the decision's alpha, whatever the analysis was run at
    tost = interval_at(interval, 1 - 2 * alpha)
    within = 0.5 - margin < tost[0] and tost[1] < 0.5 + margin
    bounded = single.rrrc is not None and interval.stderr > single.rrrc.stderr

    def made(
        outcome: Outcome, rests_on: tuple[float, float] | None, level: float | None, reason: str = ""
    ) -> Decision:
        return Decision(outcome, rule, rests_on, level, ci, tost, within, bounded, reason)

    if ci[0] > 0.5:
        return made("detectable", ci, 1 - alpha)
    if ci[1] < 0.5:
        return made("reversed", ci, 1 - alpha)
    if within and interval.stderr == 0:
        return made(
            "inconclusive",
            tost,
            1 - 2 * alpha,
            "the ratings show no variation to estimate the uncertainty from (every reader rated alike)",
        )
    if within and n_readers >= min_readers:
        return made("indistinguishable", tost, 1 - 2 * alpha)
    if within:
        return made(
            "inconclusive",
            tost,
            1 - 2 * alpha,
            f"{n_readers} reader{'s' if n_readers != 1 else ''} analysed: an equivalence verdict needs at "
            f"least {min_readers}, since fewer sample the readers too thinly to speak of readers like these",
        )
    return made(
        "inconclusive", tost, 1 - 2 * alpha, "neither a difference from chance nor equivalence is shown"
    )


def decision_dict(decision: Decision) -> dict[str, Any]:
    """The decision as the command's JSON prints it."""
    return {
        "outcome": decision.outcome,
        "rule": decision.rule,
        "interval": None
        if decision.interval is None
        else {"level": decision.level, "low": decision.interval[0], "high": decision.interval[1]},
        "ci": None if decision.ci is None else list(decision.ci),
        "ci_tost": None if decision.ci_tost is None else list(decision.ci_tost),
        "within_margin": decision.within_margin,
        "variance_bounded_by_frrc": decision.bounded,
        "reason": decision.reason,
    }


# --- Reading a data file, and the command ------------------------------------------------------------


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """Rows `reader,modality,case,truth,rating` as ratings [T, R, K], truth [K], case_mask [T, K]."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        need = {"reader", "modality", "case", "truth", "rating"}
        if reader.fieldnames is None or not need <= {f.strip().lower() for f in reader.fieldnames}:
            raise MRMCDesignError(f"{path}: expected the columns {', '.join(sorted(need))}")
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    if not rows:
        raise MRMCDesignError(f"{path}: no rows")

    def ordered(values: set[str]) -> list[str]:
        return sorted(values, key=lambda v: (0, float(v), v) if _is_number(v) else (1, 0.0, v))

    treatments = ordered({r["modality"] for r in rows})
    readers = ordered({r["reader"] for r in rows})
    cases = ordered({r["case"] for r in rows})
    t_i = {v: i for i, v in enumerate(treatments)}
    r_i = {v: i for i, v in enumerate(readers)}
    k_i = {v: i for i, v in enumerate(cases)}
    ratings = np.full((len(treatments), len(readers), len(cases)), np.nan)
    truth: dict[int, bool] = {}
    for line, row in enumerate(rows, start=2):
        try:
            value = float(row["rating"])
        except ValueError:
            raise MRMCDesignError(f"{path}, line {line}: rating {row['rating']!r} is not a number") from None
        if row["truth"] not in ("0", "1", "0.0", "1.0"):
            raise MRMCDesignError(f"{path}, line {line}: truth must be 0 or 1, got {row['truth']!r}")
        k = k_i[row["case"]]
        positive = row["truth"].startswith("1")
        if truth.setdefault(k, positive) != positive:
            raise MRMCDesignError(f"{path}, line {line}: case {row['case']} has both truths")
        cell = (t_i[row["modality"]], r_i[row["reader"]], k)
        if not np.isnan(ratings[cell]):
            raise MRMCDesignError(
                f"{path}, line {line}: reader {row['reader']} rated case {row['case']} twice in "
                f"modality {row['modality']}"
            )
        ratings[cell] = value
    mask = ~np.isnan(ratings).all(axis=1)  # [T, K]: a case belongs to a treatment some reader rated it in
    return ratings, np.array([truth[k] for k in range(len(cases))]), mask, treatments, readers


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def format_table(result: MRMCResult) -> str:
    """The analysis as a readable text table."""
    out = [
        f"OR analysis, trapezoidal AUC, {result.covariance} covariance; {len(result.readers)} readers, "
        f"{len(result.treatments)} treatment(s)",
        "",
        "Reader AUCs",
        "  reader      " + "".join(f"{t:>12}" for t in result.treatments),
    ]
    for r, reader in enumerate(result.readers):
        out.append(
            f"  {reader:<12}" + "".join(f"{result.auc[t][r]:>12.8f}" for t in range(len(result.treatments)))
        )
    out.append("  mean        " + "".join(f"{m:>12.8f}" for m in result.auc_mean))
    if result.components is not None:
        c = result.components
        out += [
            "",
            "OR ANOVA: " + ", ".join(f"{k} {v:.8f}" for k, v in result.anova.items()),
            f"Variance components: var_R {c.var_R:.8f}, var_TR {c.var_TR:.8f}, cov1 {c.cov1:.8f}, "
            f"cov2 {c.cov2:.8f}, cov3 {c.cov3:.8f}, var_error {c.var_error:.8f}",
        ]
    if result.rrrc_test:
        t = result.rrrc_test
        out.append(
            f"RRRC: F {t['F']:.4f}, ddf {t['ddf']:.2f}, p {t['p']:.4f} (error term {t['error_ms']:.8f})"
        )
    if result.frrc_test:
        t = result.frrc_test
        out.append(f"FRRC: chi2 {t['chi2']:.5f}, df {t['df']}, p {t['p']:.4f}")
    if result.rrfc_test:
        t = result.rrfc_test
        out.append(f"RRFC: F {t['F']:.4f}, ddf {t['ddf']}, p {t['p']:.4f}")
    level = f"{1 - result.alpha:.0%}"
    for d in result.differences:
        out.append("")
        out.append(f"Difference {d.first} - {d.second}")
        for name in ("rrrc", "frrc", "rrfc"):
            i = getattr(d, name)
            if i is not None:
                out.append(
                    f"  {name.upper()}: {i.estimate:+.8f}, se {i.stderr:.5f}, df {_df(i.df)}, "
                    f"p {i.p_value:.4f}, {level} CI {i.low:.5f} to {i.high:.5f}"
                )
    out.append("")
    out.append("Single treatments")
    for s in result.single:
        out.append(
            f"  {s.treatment}: mean AUC {s.auc_mean:.8f}, var_error {s.var_error:.8f}, cov2 {s.cov2:.8f}"
        )
        for name in ("rrrc", "frrc", "rrfc"):
            i = getattr(s, name)
            if i is not None:
                ci = f"{level} CI {i.low:.8f} to {i.high:.8f}"
                out.append(f"    {name.upper()}: se {i.stderr:.8f}, df {_df(i.df)}, {ci}")
    out += [f"Note: {note}" for note in result.notes]
    return "\n".join(out)


def _df(df: float) -> str:
    return "inf" if math.isinf(df) else f"{df:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.mrmc",
        description="Obuchowski-Rockette MRMC analysis of a reader,modality,case,truth,rating CSV file.",
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("--json", action="store_true", help="print the analysis as JSON")
    parser.add_argument("--covariance", choices=["jackknife", "delong"], default="jackknife")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument(
        "--margin",
        type=float,
        help="apply the verdict's rule with this equivalence margin (e.g. 0.1: within 0.5 +- 0.1)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.alpha < 0.5:
        parser.error(f"--alpha must lie between 0 and 0.5, got {args.alpha:g}")
    if args.margin is not None and not 0 < args.margin < 0.5:
        parser.error(f"--margin must lie between 0 and 0.5, got {args.margin:g}")
    try:
        ratings, truth, mask, treatments, readers = read_csv(args.file)
        result = analyse(
            ratings,
            truth,
            case_mask=mask,
            treatments=treatments,
            readers=readers,
            covariance=args.covariance,
            alpha=args.alpha,
        )
    except (OSError, MRMCDesignError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    decisions = (
        None
        if args.margin is None
        else {
            s.treatment: decide(s, len(result.readers), margin=args.margin, alpha=args.alpha)
            for s in result.single
        }
    )
    if args.json:
        data = result.as_dict()
        if decisions is not None:
            each = {name: plain(decision_dict(d)) for name, d in decisions.items()}
            data["verdict"] = next(iter(each.values())) if len(each) == 1 else each
        print(json.dumps(data, indent=2))
    else:
        print(format_table(result) + ("" if decisions is None else "\n\n" + format_decisions(decisions)))
    return 0


def format_decisions(decisions: dict[str, Decision]) -> str:
    """The verdict of each treatment as readable lines, then the rule."""
    out = ["Verdict (mean reader AUC against 0.5)"]
    for name, d in decisions.items():
        line = f"  {name}: {d.outcome}"
        if d.interval is not None and d.level is not None:
            line += f", {100 * d.level:g}% CI {d.interval[0]:.4f} to {d.interval[1]:.4f}"
        if d.outcome in ("detectable", "reversed") and d.within_margin:
            line += " (the difference from chance lies inside the margin)"
        if d.bounded:
            line += "; RRRC variance raised to the FRRC variance"
        if d.reason:
            line += f"; {d.reason}"
        out.append(line)
    rule = next(iter(decisions.values())).rule
    out.append(f"Rule: {rule}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
