"""The statistics of a visual Turing test. Pure: no Django, plain records in, plain values out.

The primary endpoint is the readers' ROC AUC for telling synthetic from real, from one "how synthetic"
rating per answer (`rating`), analysed by the Obuchowski-Rockette MRMC method with readers and cases
random (`analysis.mrmc`); the verdict follows the rule fixed in the study's protocol (`verdict`).
Response bias is separated from discrimination (`bias`: hit and false-alarm rates, d', criterion c,
balanced accuracy). Secondary, answer-level figures (the paper's): for truth = real, the share
labelled real; for truth = synthetic, the share labelled synthetic; each with an exact two-sided
binomial test against 0.5 (scipy) and Clopper-Pearson and Wilson 95% intervals (statsmodels); these
treat every answer as independent. Agreement: Fleiss' kappa over the items every reader answered,
Cohen's kappa per pair. A GEE logistic model clustered by reader, with a bias-reduced covariance and
t quantiles. A figure that cannot be computed is None with a reason.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats
from statsmodels.genmod import cov_struct, families
from statsmodels.genmod.generalized_estimating_equations import GEE
from statsmodels.stats import inter_rater, proportion

from analysis import mrmc, planning

REAL, SYNTHETIC = "real", "synthetic"
TRUTHS = (REAL, SYNTHETIC)


@dataclass(frozen=True)
class Record:
    """One answer: who, which item, the truth behind it, the label given, the confidence (1-5)."""

    reader: str
    item: str
    truth: str
    label: str
    confidence: int | None = None
    tissue_class: str = ""
    arm: str = ""  # the synthetic arm of a synthetic item ("" for real items)
    visible_ms: int | None = None  # the time the page measured (`analysis.timing`), when it did

    @property
    def correct(self) -> bool:
        return self.label == self.truth


@dataclass(frozen=True)
class Proportion:
    """A share with its test against 0.5 and its intervals; values are None (with `reason`) when n is 0."""

    successes: int
    n: int
    share: float | None
    p_value: float | None
    clopper_pearson: tuple[float, float] | None
    wilson: tuple[float, float] | None
    reason: str = ""

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < 0.05


def proportion_summary(successes: int, n: int) -> Proportion:
    if n == 0:
        return Proportion(0, 0, None, None, None, None, "no answers")
    test = scipy_stats.binomtest(successes, n, 0.5, alternative="two-sided")
    cp = proportion.proportion_confint(successes, n, alpha=0.05, method="beta")
    wilson = proportion.proportion_confint(successes, n, alpha=0.05, method="wilson")
    return Proportion(
        successes,
        n,
        successes / n,
        float(test.pvalue),
        (float(cp[0]), float(cp[1])),
        (float(wilson[0]), float(wilson[1])),
    )


@dataclass(frozen=True)
class Accuracy:
    """Per-class and overall accuracy of one reader or of all readers pooled."""

    real: Proportion  # share of real patches labelled real
    synthetic: Proportion  # share of synthetic patches labelled synthetic
    overall: Proportion  # share of all patches labelled correctly


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for multiple comparisons, returned in the order given.

    Written here rather than taken from statsmodels' `multipletests(method="holm")`, which gives the
    same numbers (the tests compare them) but runs a full garbage collection on every call: over half a
    second in a process that holds PyTorch, and a pause on every multi-arm report page."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    adjusted = np.empty(len(p))
    adjusted[order] = np.minimum(stepped, 1.0)
    return [float(value) for value in adjusted]


def accuracy(records: Sequence[Record]) -> Accuracy:
    by_truth = {truth: [r for r in records if r.truth == truth] for truth in TRUTHS}
    overall = proportion_summary(sum(r.correct for r in records), len(records))
    if len(by_truth[REAL]) != len(by_truth[SYNTHETIC]) and overall.n:
        # Chance is not 0.5 when real and synthetic patches are not 1:1: a reader who answers "real" to
        # everything in a 3:1 study is right 75% of the time. Balanced accuracy is the figure to test.
        overall = Proportion(
            overall.successes,
            overall.n,
            overall.share,
            None,
            overall.clopper_pearson,
            overall.wilson,
            "not tested against 0.5: real and synthetic answers are not 1:1 (see balanced accuracy)",
        )
    return Accuracy(
        real=proportion_summary(sum(r.correct for r in by_truth[REAL]), len(by_truth[REAL])),
        synthetic=proportion_summary(sum(r.correct for r in by_truth[SYNTHETIC]), len(by_truth[SYNTHETIC])),
        overall=overall,
    )


@dataclass(frozen=True)
class Kappa:
    value: float | None
    n_items: int
    reason: str = ""


def _labels_by_item(records: Iterable[Record]) -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = defaultdict(dict)
    for r in records:
        table[r.item][r.reader] = r.label
    return table


def fleiss(records: Sequence[Record]) -> Kappa:
    """Fleiss' kappa over the items that every reader answered."""
    readers = sorted({r.reader for r in records})
    if len(readers) < 2:
        return Kappa(None, 0, "agreement needs at least two readers")
    table = _labels_by_item(records)
    common = [item for item, labels in table.items() if len(labels) == len(readers)]
    if not common:
        return Kappa(None, 0, "no item was answered by every reader")
    rows = np.array([[table[item][reader] == SYNTHETIC for reader in readers] for item in common], dtype=int)
    counts, _ = inter_rater.aggregate_raters(rows, n_cat=2)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(inter_rater.fleiss_kappa(counts, method="fleiss"))
    if not math.isfinite(value):
        return Kappa(None, len(common), "every answer is the same: kappa is undefined")
    return Kappa(value, len(common))


def cohen_pairs(records: Sequence[Record]) -> dict[tuple[str, str], Kappa]:
    """Cohen's kappa for each pair of readers, over the items both answered.

    The 2x2 tables of all pairs come from four matrix products of label indicators (items x readers),
    so a study of 100 readers and 5,000 items takes milliseconds; each kappa is statsmodels'.
    """
    readers = sorted({r.reader for r in records})
    items = sorted({r.item for r in records})
    reader_index = {reader: i for i, reader in enumerate(readers)}
    item_index = {item: i for i, item in enumerate(items)}
    says_synthetic = np.zeros((len(items), len(readers)))  # [items, readers]
    says_real = np.zeros((len(items), len(readers)))
    for r in records:
        target = says_synthetic if r.label == SYNTHETIC else says_real
        target[item_index[r.item], reader_index[r.reader]] = 1.0
    n_ss, n_rr = says_synthetic.T @ says_synthetic, says_real.T @ says_real  # [readers, readers]
    n_sr = says_synthetic.T @ says_real
    out: dict[tuple[str, str], Kappa] = {}
    for a, b in itertools.combinations(range(len(readers)), 2):
        table = np.array([[n_rr[a, b], n_sr[b, a]], [n_sr[a, b], n_ss[a, b]]])  # rows: a, columns: b
        n = int(table.sum())
        pair = (readers[a], readers[b])
        if n == 0:
            out[pair] = Kappa(None, 0, "no item answered by both")
            continue
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            value = float(inter_rater.cohens_kappa(table, return_results=False))
        out[pair] = (
            Kappa(value, n)
            if math.isfinite(value)
            else Kappa(None, n, "both readers gave one label only: kappa is undefined")
        )
    return out


def fool_rates(records: Sequence[Record]) -> dict[str, float]:
    """For each synthetic item: the share of its readers who called it real."""
    votes: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        if r.truth == SYNTHETIC:
            votes[r.item].append(r.label == REAL)
    return {item: sum(v) / len(v) for item, v in votes.items()}


@dataclass(frozen=True)
class Clustered:
    """GEE logistic regression of correctness on the truth class, clustered by reader only.

    With few readers robust (sandwich) errors are too small; this uses the bias-reduced covariance
    (Mancl & DeRouen) and t quantiles with readers - 1 degrees of freedom. Items are read by every
    reader too, which this model does not account for: the MRMC analysis does.
    """

    real: float | None  # model-based accuracy on real patches
    real_ci: tuple[float, float] | None
    synthetic: float | None
    synthetic_ci: tuple[float, float] | None
    n_readers: int
    reason: str = ""


def _bias_reduced_covariance(model: Any, cov_naive: np.ndarray) -> np.ndarray:
    """Mancl & DeRouen's bias-reduced sandwich covariance, the same as statsmodels' GEE
    `cov_type="bias_reduced"`, computed in time linear in the cluster size.

    statsmodels solves (I - H_i) a = r_i with a dense n_i x n_i matrix per cluster: quadratic in the
    answers per reader (over two minutes for 100 readers x 5,000 items). H_i = D_i C D_i' V_i^-1 has
    rank p (here 2), so by Woodbury's identity (I - A B)^-1 r = r + A (I_p - B A)^-1 B r with A = D_i and
    B = C D_i' V_i^-1 the solve is p x p. `tests/evaluation/test_stats.py` checks it against statsmodels.
    """
    scale = model.estimate_scale()
    c = cov_naive / model.scaling_factor
    p = c.shape[0]
    meat = np.zeros((p, p))
    for i in range(model.num_group):
        expval, lpr = model.cached_means[i]
        resid = model.endog_li[i] - expval
        dmat = model.mean_deriv(model.exog_li[i], lpr)  # [n_i, p]
        sdev = np.sqrt(model.family.variance(expval))
        vinv_d = model.cov_struct.covariance_matrix_solve(expval, i, sdev, (dmat,))[0] / scale  # [n_i, p]
        b_a = c @ (vinv_d.T @ dmat)  # [p, p]
        b_r = c @ (vinv_d.T @ resid)  # [p]
        adjusted = resid + dmat @ np.linalg.solve(np.eye(p) - b_a, b_r)
        vinv_adjusted = model.cov_struct.covariance_matrix_solve(expval, i, sdev, (adjusted,))[0]
        score = dmat.T @ vinv_adjusted / scale
        meat += np.outer(score, score)
    return np.asarray(c @ meat @ c * model.scaling_factor)


def clustered(records: Sequence[Record]) -> Clustered:
    readers = sorted({r.reader for r in records})
    truths = {r.truth for r in records}
    if len(readers) < 2:
        return Clustered(
            None, None, None, None, len(readers), "a clustered analysis needs at least two readers"
        )
    if truths != set(TRUTHS):
        return Clustered(None, None, None, None, len(readers), "both truth classes need answers")
    y = np.array([r.correct for r in records], dtype=float)
    if y.min() == y.max():
        return Clustered(
            None, None, None, None, len(readers), "every answer is equally correct: no variation"
        )
    for truth in TRUTHS:
        shares = {r.correct for r in records if r.truth == truth}
        if len(shares) == 1:
            return Clustered(
                None,
                None,
                None,
                None,
                len(readers),
                f"every {truth} patch was answered {'correctly' if shares.pop() else 'wrongly'}: "
                "the logistic model has no finite estimate (separation)",
            )
    synthetic = np.array([r.truth == SYNTHETIC for r in records], dtype=float)
    exog = np.column_stack([np.ones_like(synthetic), synthetic])  # intercept = real, + synthetic effect
    groups = np.array([readers.index(r.reader) for r in records])
    model = GEE(y, exog, groups=groups, family=families.Binomial(), cov_struct=cov_struct.Exchangeable())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit()
        cov = _bias_reduced_covariance(model, np.asarray(fit.cov_naive))
    params = np.asarray(fit.params)
    quantile = float(scipy_stats.t.ppf(0.975, len(readers) - 1))
    if not (np.isfinite(params).all() and np.isfinite(cov).all() and (np.diag(cov) >= 0).all()):
        return Clustered(
            None, None, None, None, len(readers), "the model did not converge to finite estimates"
        )

    def estimate(contrast: np.ndarray) -> tuple[float, tuple[float, float]]:
        eta = float(contrast @ params)
        se = math.sqrt(max(float(contrast @ cov @ contrast), 0.0))  # rounding can leave -1e-18
        expit = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
        return expit(eta), (expit(eta - quantile * se), expit(eta + quantile * se))

    real, real_ci = estimate(np.array([1.0, 0.0]))
    synth, synth_ci = estimate(np.array([1.0, 1.0]))
    return Clustered(real, real_ci, synth, synth_ci, len(readers))


# --- The rating scale -------------------------------------------------------------------------------

RATING_SCALE = (
    "One 'how synthetic' rating per answer, from 1 to 10: real with confidence 5 is 1, real/4 is 2, ... "
    "real/1 is 5, synthetic/1 is 6, ... synthetic/5 is 10. An answer without a confidence counts as "
    "confidence 1 ('a guess') of its label: 5 for real, 6 for synthetic. With no confidences at all the "
    "ratings are 5 and 6 and the AUC equals balanced accuracy."
)


def rating(label: str, confidence: int | None) -> int:
    """The 1-10 "how synthetic" rating of one answer (`RATING_SCALE`): the same rule everywhere."""
    level = confidence if confidence is not None else 1
    return 5 + level if label == SYNTHETIC else 6 - level


def roc_points(records: Sequence[Record]) -> tuple[list[float], list[float]] | None:
    """Empirical ROC of the 1-10 ratings: (false-positive rates, true-positive rates), (0, 0) to (1, 1)."""
    synth = np.array([rating(r.label, r.confidence) for r in records if r.truth == SYNTHETIC])
    real = np.array([rating(r.label, r.confidence) for r in records if r.truth == REAL])
    if not len(synth) or not len(real):
        return None
    thresholds = range(11, 0, -1)  # "synthetic" when the rating is at least k
    fpr = [float((real >= k).mean()) for k in thresholds]
    tpr = [float((synth >= k).mean()) for k in thresholds]
    return fpr, tpr


def mean_roc(
    curves: Sequence[tuple[list[float], list[float]]],
) -> tuple[list[float], list[float]] | None:
    """Threshold averaging of empirical ROC curves (`roc_points`, all at the same 11 rating thresholds):
    the readers' false- and true-positive rates at each threshold, averaged."""
    if not curves:
        return None
    return (
        [float(np.mean([c[0][i] for c in curves])) for i in range(len(curves[0][0]))],
        [float(np.mean([c[1][i] for c in curves])) for i in range(len(curves[0][1]))],
    )


def reader_auc_intervals(result: mrmc.MRMCResult, alpha: float) -> list[tuple[str, float, float, float]]:
    """Each reader's AUC of the first treatment with its normal (1 - alpha) interval from its own
    variance over cases (the fixed-reader view of one reader), as (reader, auc, low, high)."""
    z = float(scipy_stats.norm.ppf(1 - alpha / 2))
    rows = []
    for r, reader in enumerate(result.readers):
        se = math.sqrt(max(result.auc_var[0][r], 0.0))
        auc = float(result.auc[0][r])
        rows.append((reader, auc, auc - z * se, auc + z * se))
    return rows


def rating_counts(records: Sequence[Record]) -> dict[str, list[int]]:
    """How many answers gave each rating 1-10, by truth."""
    counts = {truth: [0] * 10 for truth in TRUTHS}
    for r in records:
        counts[r.truth][rating(r.label, r.confidence) - 1] += 1
    return counts


# --- Response bias --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bias:
    """Signal detection figures, synthetic as the signal: hits are synthetic patches called synthetic."""

    hit_rate: float | None
    false_alarm_rate: float | None
    d_prime: float | None  # discrimination: 0 = none
    criterion: float | None  # c > 0: a lean towards "real"; c < 0: towards "synthetic"
    called_real: float | None  # share of all answers that said "real"
    balanced_accuracy: float | None  # (hit rate + correct rejection rate) / 2
    reason: str = ""


def bias(records: Sequence[Record]) -> Bias:
    """Hit and false-alarm rates, d' and c with the log-linear correction (Hautus 1995: add 0.5 to each
    count and 1 to each total) so that rates of 0 or 1 give finite values."""
    synth = [r for r in records if r.truth == SYNTHETIC]
    real = [r for r in records if r.truth == REAL]
    if not synth or not real:
        return Bias(None, None, None, None, None, None, "answers on both truths are needed")
    hits = sum(r.label == SYNTHETIC for r in synth)
    alarms = sum(r.label == SYNTHETIC for r in real)
    h, f = hits / len(synth), alarms / len(real)
    zh = float(scipy_stats.norm.ppf((hits + 0.5) / (len(synth) + 1)))
    zf = float(scipy_stats.norm.ppf((alarms + 0.5) / (len(real) + 1)))
    called_real = sum(r.label == REAL for r in records) / len(records)
    return Bias(h, f, zh - zf, -(zh + zf) / 2, called_real, (h + 1 - f) / 2)


@dataclass(frozen=True)
class BiasTest:
    """Is the readers' mean criterion c different from 0 (random readers: a t test across readers)?"""

    mean_criterion: float | None
    p_value: float | None
    called_real: float | None
    real_share: float | None  # share of answers whose truth is real
    significant: bool
    reason: str = ""


def bias_test(per_reader: dict[str, Bias], records: Sequence[Record], alpha: float) -> BiasTest:
    values = [b.criterion for b in per_reader.values() if b.criterion is not None]
    called_real = sum(r.label == REAL for r in records) / len(records) if records else None
    real_share = sum(r.truth == REAL for r in records) / len(records) if records else None
    if len(values) < 2:
        return BiasTest(None, None, called_real, real_share, False, "a test across readers needs two readers")
    mean = float(np.mean(values))
    if np.allclose(values, values[0], rtol=0, atol=1e-12):  # no spread: a t test is undefined
        p = 0.0 if mean != 0 else 1.0
    else:
        p = float(scipy_stats.ttest_1samp(values, 0.0).pvalue)
    return BiasTest(mean, p, called_real, real_share, p < alpha)


# --- The MRMC analysis of a Turing study, and the verdict ----------------------------------------------


@dataclass(frozen=True)
class Protocol:
    """What a study fixed before its first answer: the rule its verdict follows."""

    endpoint: str = "mean reader ROC AUC (synthetic vs real), random readers and cases (OR, RRRC)"
    margin: float = 0.10  # delta: "indistinguishable" means the AUC is within 0.5 +- delta
    alpha: float = 0.05
    # The stopping rule: the verdict waits for this many readers to finish every one of `planned_items`
    # items (0: no plan was fixed, as in studies built before plans were; their verdict is exploratory).
    # None: an analysis outside a study (a file, a simulation), where no stopping rule applies.
    planned_readers: int | None = None
    planned_items: int = 0
    amended: bool = False  # readers were enrolled beyond the plan after the first answer


@dataclass
class TuringMRMC:
    """The OR analysis of a study's ratings, and the same analysis of its labels alone."""

    result: mrmc.MRMCResult | None
    balanced: mrmc.MRMCResult | None  # binary ratings: the AUC is balanced accuracy
    readers: list[str]
    excluded: list[str]  # readers who have not answered every case
    n_cases: int
    n_unrated: int  # answers with no confidence (rated as confidence 1 of their label)
    reason: str = ""
    uninformative: bool = False  # every reader gave every case one and the same rating


def complete_readers(
    records: Sequence[Record], cases: Sequence[str] | None
) -> tuple[list[str], list[str], dict[str, dict[str, Record]], list[str]]:
    """The readers who answered every case, the others, each reader's answers by item, and the cases
    (the study's items; default: every item answered by anyone), sorted."""
    ordered = sorted(set(cases) if cases is not None else {r.item for r in records})
    by_reader: dict[str, dict[str, Record]] = defaultdict(dict)
    for r in records:
        by_reader[r.reader][r.item] = r
    wanted = set(ordered)
    readers = sorted(name for name, items in by_reader.items() if wanted <= set(items))
    return readers, sorted(set(by_reader) - set(readers)), by_reader, ordered


def turing_mrmc(
    records: Sequence[Record],
    *,
    cases: Sequence[str] | None = None,
    alpha: float = 0.05,
    unavailable: str = "",
) -> TuringMRMC:
    """MRMC over the readers who answered every case (`cases`: the study's items; default: every item
    answered by anyone). Readers still reading are left out and named, never half counted.
    `unavailable`: why this design has no common case set (then no analysis, and that reason)."""
    readers, excluded, by_reader, cases = complete_readers(records, cases)
    truth_of = {r.item: r.truth for r in records}
    n_unrated = sum(1 for r in records if r.confidence is None)
    if unavailable:
        return TuringMRMC(None, None, [], sorted(by_reader), 0, n_unrated, unavailable)
    if not readers:
        return TuringMRMC(
            None, None, [], excluded, len(cases), n_unrated, "no reader has answered every item yet"
        )
    truth = np.array([truth_of[c] == SYNTHETIC for c in cases])
    scores = np.array(
        [[[rating(by_reader[n][c].label, by_reader[n][c].confidence) for c in cases] for n in readers]]
    )
    labels = np.array([[[by_reader[n][c].label == SYNTHETIC for c in cases] for n in readers]], dtype=float)
    try:
        result = mrmc.analyse(scores, truth, treatments=["synthetic vs real"], readers=readers, alpha=alpha)
        balanced = mrmc.analyse(labels, truth, treatments=["labels only"], readers=readers, alpha=alpha)
    except mrmc.MRMCDesignError as exc:
        return TuringMRMC(None, None, readers, excluded, len(cases), n_unrated, str(exc))
    uninformative = bool((scores == scores[:, :, :1]).all())
    return TuringMRMC(result, balanced, readers, excluded, len(cases), n_unrated, uninformative=uninformative)


VERDICT_RULE = (
    "Fixed before the first answer: the primary endpoint is the mean reader ROC AUC for telling synthetic"
    " from real patches (0.5 = chance), with its random-reader random-case (RRRC) interval, whose "
    "variance is never taken below the fixed-reader one. Detectable: the {ci}% interval lies above 0.5. "
    "Reversed: it lies below 0.5 (the readers' ratings ranked synthetic patches as more likely real than "
    "real ones). Indistinguishable: the {ci2}% interval of the mean reader AUC lies inside {low} to "
    "{high} (0.5 ± {margin}; two one-sided tests at {alpha}), with at least {min_readers} readers "
    "analysed (fewer sample the readers too thinly; and where a few readers can tell and most cannot, an "
    "equivalence claim is the firmer the more readers it rests on). A difference from chance takes "
    "precedence; where its {ci2}% interval also lies inside the margin, the verdict says both. Otherwise "
    "inconclusive, also when every reader gave every patch one and the same answer (no variation to "
    "estimate anything from).{stopping} A lean towards one answer is reported when the readers' mean "
    "criterion c differs from 0 by a t test across readers at {alpha}."
)

STOPPING_RULE = (
    " Stopping rule: the verdict is given once {planned} {have} answered all "
    "{items} planned items, and not before (an interim look gives no verdict); readers enrolled beyond "
    "the plan after the first answer are a recorded amendment, and the verdict is then exploratory."
)
NO_STOPPING_RULE = (
    " This study fixed no planned number of readers, so nothing guards its verdict against looking "
    "again after each new reader: read it as exploratory."
)


@dataclass(frozen=True)
class Verdict:
    kind: str  # detectable, reversed, indistinguishable, inconclusive, interim, not available
    headline: str
    rule: str
    auc: float | None = None
    ci: tuple[float, float] | None = None  # 1 - alpha
    ci_tost: tuple[float, float] | None = None  # 1 - 2 alpha
    advice: str = ""
    level: float | None = None  # the confidence level of the interval the kind rests on
    within_margin: bool = False  # the 1 - 2 alpha interval lies inside 0.5 +- margin
    exploratory: bool = False  # readers beyond the plan were added after the freeze, or there is no plan


def verdict_rule(protocol: Protocol) -> str:
    alpha, margin = protocol.alpha, protocol.margin
    if protocol.planned_readers:
        planned = protocol.planned_readers
        stopping = STOPPING_RULE.format(
            planned="the 1 planned reader" if planned == 1 else f"the {planned} planned readers",
            have="has" if planned == 1 else "have each",
            items=protocol.planned_items,
        )
    else:
        stopping = "" if protocol.planned_readers is None else NO_STOPPING_RULE
    return VERDICT_RULE.format(
        ci=_pct(1 - alpha),
        ci2=_pct(1 - 2 * alpha),
        margin=f"{margin:.2f}",
        low=f"{0.5 - margin:.2f}",
        high=f"{0.5 + margin:.2f}",
        alpha=f"{alpha:g}",
        min_readers=mrmc.MIN_EQUIVALENCE_READERS,
        stopping=stopping,
    )


def verdict(analysis: TuringMRMC, protocol: Protocol) -> Verdict:
    alpha, margin = protocol.alpha, protocol.margin
    rule = verdict_rule(protocol)
    n_readers = len(analysis.readers)
    no_design = analysis.result is None and analysis.n_cases == 0  # no common item set to analyse
    if protocol.planned_readers and n_readers < protocol.planned_readers and not no_design:
        return Verdict(
            "interim",
            f"Interim: {n_readers} of {protocol.planned_readers} planned readers "
            f"{'has' if n_readers == 1 else 'have'} finished. The verdict is given once all of them have, "
            "under the stopping rule fixed with the protocol.",
            rule,
        )
    exploratory = protocol.planned_readers == 0 or protocol.amended
    single = analysis.result.single[0] if analysis.result is not None else None
    if single is None or single.rrrc is None:
        why = (
            analysis.reason or "the random-reader analysis needs at least two readers who answered every item"
        )
        return Verdict("not available", f"No verdict yet: {why}.", rule)
    auc = single.auc_mean
    if analysis.uninformative:
        return Verdict(
            "inconclusive",
            "Inconclusive: each reader gave every patch the same answer, which says nothing about whether "
            f"they could tell the two apart (mean reader AUC {auc:.3f}, with no variation to estimate its "
            "uncertainty).",
            rule,
            auc,
        )
    d = mrmc.decide(single, n_readers, margin=margin, alpha=alpha)
    assert d.ci is not None and d.ci_tost is not None  # two or more readers: every interval exists
    ci = f"mean reader AUC {auc:.3f}, {_pct(1 - alpha)}% CI {_range(d.ci)}"
    within = f"mean reader AUC within 0.5 ± {margin:.2f}: {_pct(1 - 2 * alpha)}% CI {_range(d.ci_tost)}"
    if d.outcome == "detectable":
        headline = f"Readers could tell synthetic from real patches ({ci}, above 0.5)."
    elif d.outcome == "reversed":
        headline = (
            "Readers separated the two the wrong way round: their ratings ranked synthetic patches as "
            f"more likely real than the real ones ({ci}, below 0.5)."
        )
    elif d.outcome == "indistinguishable":
        headline = (
            f"Readers could not tell synthetic from real patches within the pre-set margin ({within}; "
            f"mean {auc:.3f})."
        )
    elif d.within_margin:
        headline = f"Inconclusive: {d.reason} ({within})."
    else:
        headline = (
            f"Inconclusive: neither a difference from chance nor equivalence within ± {margin:.2f} is "
            f"shown ({ci}; {within})."
        )
    if d.outcome in ("detectable", "reversed") and d.within_margin:
        headline += (
            f" The difference from chance is small: it also lies inside the pre-set margin ({within})."
        )
    if exploratory:
        headline = (
            "Exploratory: "
            + (
                "readers were enrolled beyond the planned number after the first answer (a recorded "
                "amendment). "
                if protocol.amended
                else "no planned number of readers was fixed before the data. "
            )
            + headline
        )
    advice = (
        _advice(single, analysis, margin, alpha)
        if d.outcome == "inconclusive" and not d.within_margin
        else ""
    )
    return Verdict(
        d.outcome,
        headline,
        rule,
        auc,
        d.ci,
        d.ci_tost,
        advice,
        d.level,
        d.within_margin,
        exploratory,
    )


def _range(interval: tuple[float, float]) -> str:
    """An AUC interval as printed: clipped to 0-1, its range AUCs can take."""
    low, high = (min(max(v, 0.0), 1.0) for v in interval)
    return f"{low:.3f} to {high:.3f}"


def _advice(single: mrmc.SingleTreatment, analysis: TuringMRMC, margin: float, alpha: float) -> str:
    """How many more readers or cases would likely settle it, from the study's own variance components."""
    pilot = planning.pilot_from(single, analysis.n_cases, "this study")
    readers, cases = len(analysis.readers), analysis.n_cases
    more_readers = planning.readers_needed(pilot, cases, margin, alpha=alpha)
    more_cases = planning.cases_needed(pilot, readers, margin, alpha=alpha)
    parts = []
    if more_readers is not None:
        parts.append(f"about {more_readers} readers reading these {cases} items")
    if more_cases is not None:
        parts.append(f"these {readers} readers reading about {more_cases} items each")
    if not parts:
        return (
            "From this study's variances, neither more readers nor more items alone would likely "
            "show equivalence."
        )
    return (
        "For a next study: if readers truly cannot tell the patches apart (AUC 0.5), equivalence would "
        "likely (80% power) be shown with "
        + " or ".join(parts)
        + ", from this study's own variance components. Adding readers to this study after its first "
        "answer would be an amendment that makes its verdict exploratory."
    )


def count_noun(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def names_list(names: Sequence[str]) -> str:
    """R1; R1 and R2; R1, R2 and R3."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _pct(level: float) -> str:
    return f"{100 * level:g}"


def format_p(p: float | None) -> str:
    """p-values as a reader expects them: never "0.0000"."""
    if p is None:
        return "—"
    if p < 0.0001:
        return "p < 0.0001"
    if p < 0.001:
        return f"p = {p:.1e}"
    return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def format_share(share: float | None) -> str:
    """A share as a percentage with one decimal (37.5%), so that no half is rounded away."""
    return "—" if share is None else f"{100 * share:.1f}%"
