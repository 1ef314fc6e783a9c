"""The statistics of a visual Turing test. Pure: no Django, plain records in, plain values out.

Definitions (DESIGN.md, Statistics): for truth = real, accuracy is the share labelled real; for truth
= synthetic, the share labelled synthetic. Each proportion gets an exact two-sided binomial test
against 0.5 (scipy) and Clopper-Pearson and Wilson 95% intervals (statsmodels). Agreement: Fleiss'
kappa over the items every reader answered, Cohen's kappa per pair (statsmodels). Beyond the paper:
a GEE logistic model with readers as clusters, an exact TOST equivalence test against chance, and ROC
AUC per reader from label x confidence. A figure that cannot be computed is None with a reason.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats as scipy_stats
from statsmodels.stats import inter_rater, proportion

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


def accuracy(records: Sequence[Record]) -> Accuracy:
    by_truth = {truth: [r for r in records if r.truth == truth] for truth in TRUTHS}
    return Accuracy(
        real=proportion_summary(sum(r.correct for r in by_truth[REAL]), len(by_truth[REAL])),
        synthetic=proportion_summary(sum(r.correct for r in by_truth[SYNTHETIC]), len(by_truth[SYNTHETIC])),
        overall=proportion_summary(sum(r.correct for r in records), len(records)),
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
    """GEE logistic regression of correctness on the truth class, clustered by reader."""

    real: float | None  # model-based accuracy on real patches
    real_ci: tuple[float, float] | None
    synthetic: float | None
    synthetic_ci: tuple[float, float] | None
    n_readers: int
    reason: str = ""


def clustered(records: Sequence[Record]) -> Clustered:
    import statsmodels.api as sm

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
    model = sm.GEE(
        y, exog, groups=groups, family=sm.families.Binomial(), cov_struct=sm.cov_struct.Exchangeable()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit()
    params, cov = np.asarray(fit.params), np.asarray(fit.cov_params())
    if not (np.isfinite(params).all() and np.isfinite(cov).all() and (np.diag(cov) >= 0).all()):
        return Clustered(
            None, None, None, None, len(readers), "the model did not converge to finite estimates"
        )

    def estimate(contrast: np.ndarray) -> tuple[float, tuple[float, float]]:
        eta = float(contrast @ params)
        se = math.sqrt(float(contrast @ cov @ contrast))
        expit = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
        return expit(eta), (expit(eta - 1.959964 * se), expit(eta + 1.959964 * se))

    real, real_ci = estimate(np.array([1.0, 0.0]))
    synth, synth_ci = estimate(np.array([1.0, 1.0]))
    return Clustered(real, real_ci, synth, synth_ci, len(readers))


@dataclass(frozen=True)
class Equivalence:
    """Exact TOST: is the share within 0.5 +/- margin (indistinguishable from chance)?"""

    share: float | None
    margin: float
    p_value: float | None
    equivalent: bool
    reason: str = ""


def equivalence(successes: int, n: int, margin: float = 0.10) -> Equivalence:
    if n == 0:
        return Equivalence(None, margin, None, False, "no answers")
    p_value, _, _ = proportion.binom_tost(successes, n, 0.5 - margin, 0.5 + margin)
    p = float(p_value)
    return Equivalence(successes / n, margin, p, p < 0.05)


@dataclass(frozen=True)
class Auc:
    value: float | None
    n: int
    reason: str = ""


def reader_auc(records: Sequence[Record]) -> Auc:
    """ROC AUC of a reader's rating of synthetic-ness: +confidence for 'synthetic', -confidence for 'real'.

    Computed as the Mann-Whitney U statistic over the number of (synthetic, real) pairs.
    """
    rated = [r for r in records if r.confidence is not None]
    if not rated:
        return Auc(None, 0, "no confidence ratings")
    scores = {
        t: [(r.confidence or 0) * (1 if r.label == SYNTHETIC else -1) for r in rated if r.truth == t]
        for t in TRUTHS
    }
    if not scores[REAL] or not scores[SYNTHETIC]:
        return Auc(None, len(rated), "ratings of both truth classes are needed")
    u = scipy_stats.mannwhitneyu(scores[SYNTHETIC], scores[REAL], alternative="two-sided").statistic
    return Auc(float(u) / (len(scores[SYNTHETIC]) * len(scores[REAL])), len(rated))


@dataclass
class StudyStatistics:
    n_answers: int
    readers: list[str]
    pooled: Accuracy
    per_reader: dict[str, Accuracy]
    per_class: dict[str, Accuracy]
    fleiss: Kappa
    cohen: dict[tuple[str, str], Kappa]
    fool_rates: dict[str, float]
    clustered: Clustered
    equivalence_overall: Equivalence
    auc: dict[str, Auc]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cohen"] = {f"{a} & {b}": asdict(k) for (a, b), k in self.cohen.items()}
        return data


def study_statistics(records: Sequence[Record], *, margin: float = 0.10) -> StudyStatistics:
    """Every figure of a study's report, from its answers."""
    readers = sorted({r.reader for r in records})
    by_reader: dict[str, list[Record]] = defaultdict(list)
    by_class: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_reader[r.reader].append(r)
        if r.tissue_class:
            by_class[r.tissue_class].append(r)
    pooled = accuracy(records)
    notes = []
    if not records:
        notes.append("No answers yet: every figure is undefined.")
    elif len(readers) == 1:
        notes.append("One reader only: agreement and the clustered analysis need at least two.")
    if records:
        notes.append(
            "Pooled binomial tests treat every answer as independent; answers are clustered by reader and "
            "by image, so the clustered analysis is the more honest estimate."
        )
    return StudyStatistics(
        n_answers=len(records),
        readers=readers,
        pooled=pooled,
        per_reader={reader: accuracy(by_reader[reader]) for reader in readers},
        per_class={c: accuracy(rs) for c, rs in sorted(by_class.items())},
        fleiss=fleiss(records),
        cohen=cohen_pairs(records),
        fool_rates=fool_rates(records),
        clustered=clustered(records),
        equivalence_overall=equivalence(pooled.overall.successes, pooled.overall.n, margin),
        auc={reader: reader_auc(by_reader[reader]) for reader in readers},
        notes=notes,
    )


def plain_summary(result: StudyStatistics) -> list[str]:
    """A few sentences that say what the figures show and no more."""
    if not result.n_answers:
        return ["No answers yet."]
    lines = []
    for truth, prop, verb in (
        (REAL, result.pooled.real, "called real"),
        (SYNTHETIC, result.pooled.synthetic, "called synthetic"),
    ):
        if prop.share is None:
            lines.append(f"No {truth} patches were answered.")
            continue
        lo, hi = prop.clopper_pearson or (0.0, 1.0)
        finding = (
            f"different from chance (exact binomial p = {prop.p_value:.3g})"
            if prop.significant
            else f"not shown to differ from chance (exact binomial p = {prop.p_value:.3g})"
        )
        lines.append(
            f"{truth.capitalize()} patches were {verb} {prop.share:.0%} of the time "
            f"({prop.successes} of {prop.n}; 95% CI {lo:.0%} to {hi:.0%}): {finding}."
        )
    eq = result.equivalence_overall
    if eq.share is not None and eq.p_value is not None:
        if eq.equivalent:
            lines.append(
                f"Overall accuracy {eq.share:.0%} is within {eq.margin:.0%} of chance by an equivalence test "
                f"(TOST p = {eq.p_value:.3g}): the readers could not tell the two apart, to that margin."
            )
        else:
            lines.append(
                f"An equivalence test does not show overall accuracy ({eq.share:.0%}) to be within "
                f"{eq.margin:.0%} of chance (TOST p = {eq.p_value:.3g}), "
                "so 'indistinguishable' is not supported."
            )
    return lines
