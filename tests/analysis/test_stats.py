"""The statistics module against the libraries' own figures, the paper's numbers and edge cases."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats as scipy_stats
from statsmodels.stats import inter_rater, proportion
from statsmodels.stats.multitest import multipletests

from analysis import report, stats
from analysis.stats import Record
from analysis.summary import plain_summary


def paper_study(readers: int = 4, per_class: int = 50) -> list[Record]:
    """4 readers, each labelling the same 50 real and 50 synthetic items: 55% of real patches called
    real and 33% of synthetic patches called synthetic, pooled (the paper's figures)."""
    rng = np.random.default_rng(7)
    real_hits = [28, 27, 28, 27]  # 110 of 200 real patches called real
    synthetic_hits = [17, 16, 17, 16]  # 66 of 200 synthetic patches called synthetic
    records = []
    for index in range(readers):
        reader = f"r{index}"
        real_labels = ["real"] * real_hits[index] + ["synthetic"] * (per_class - real_hits[index])
        synth_labels = ["synthetic"] * synthetic_hits[index] + ["real"] * (per_class - synthetic_hits[index])
        rng.shuffle(real_labels)
        rng.shuffle(synth_labels)
        confidences = rng.integers(1, 6, size=2 * per_class)
        for item, label in enumerate(real_labels):
            records.append(Record(reader, f"real-{item}", "real", label, int(confidences[item]), "LYM"))
        for item, label in enumerate(synth_labels):
            records.append(
                Record(reader, f"syn-{item}", "synthetic", label, int(confidences[per_class + item]), "LYM")
            )
    return records


def test_the_papers_figures_come_out_of_a_study_built_to_match_them() -> None:
    result = report.study_statistics(paper_study())
    assert result.pooled.real.share == pytest.approx(0.55)
    assert result.pooled.synthetic.share == pytest.approx(0.33)
    assert len(result.readers) == 4 and result.n_answers == 400
    assert not result.pooled.real.significant  # 110 of 200 is not shown to differ from chance
    assert result.pooled.synthetic.significant  # 66 of 200 is
    summary = " ".join(plain_summary(result))
    assert "real patches were called real 55.0% of the time (110 of 200" in summary
    assert "synthetic patches were called synthetic 33.0% of the time (66 of 200" in summary
    assert "treating answers as independent" in summary
    assert summary.startswith(result.verdict.headline) and result.verdict.kind != "indistinguishable"


def test_proportions_equal_scipy_and_statsmodels() -> None:
    summary = stats.proportion_summary(37, 90)
    assert summary.p_value == pytest.approx(scipy_stats.binomtest(37, 90, 0.5).pvalue)
    assert summary.clopper_pearson == pytest.approx(proportion.proportion_confint(37, 90, method="beta"))
    assert summary.wilson == pytest.approx(proportion.proportion_confint(37, 90, method="wilson"))


def test_kappas_equal_statsmodels() -> None:
    records = paper_study()
    result = report.study_statistics(records)
    readers = sorted({r.reader for r in records})
    items = sorted({r.item for r in records})
    label = {(r.reader, r.item): int(r.label == "synthetic") for r in records}
    table, _ = inter_rater.aggregate_raters(
        np.array([[label[(rd, it)] for rd in readers] for it in items]), n_cat=2
    )
    assert result.fleiss.value == pytest.approx(inter_rater.fleiss_kappa(table))
    assert result.fleiss.n_items == 100
    for a, b in itertools.combinations(readers, 2):
        contingency = np.zeros((2, 2))
        for it in items:
            contingency[label[(a, it)], label[(b, it)]] += 1
        assert result.cohen[(a, b)].value == pytest.approx(
            inter_rater.cohens_kappa(contingency, return_results=False)
        )


def test_clustered_model_equals_statsmodels_gee() -> None:
    records = paper_study()
    result = stats.clustered(records)
    data = pd.DataFrame(
        {
            "correct": [int(r.correct) for r in records],
            "synthetic": [int(r.truth == "synthetic") for r in records],
            "reader": [r.reader for r in records],
        }
    )
    model = smf.gee(
        "correct ~ synthetic",
        "reader",
        data,
        family=sm.families.Binomial(),
        cov_struct=sm.cov_struct.Exchangeable(),
    )
    fit = model.fit()
    expit = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    assert result.real == pytest.approx(expit(fit.params["Intercept"]), rel=1e-4)
    assert result.synthetic == pytest.approx(
        expit(fit.params["Intercept"] + fit.params["synthetic"]), rel=1e-4
    )
    bias_reduced = model.fit(cov_type="bias_reduced")
    se = float(np.sqrt(bias_reduced.cov_params().loc["Intercept", "Intercept"]))
    t = scipy_stats.t.ppf(0.975, 3)  # 4 readers: t with 3 degrees of freedom, not z
    eta = float(fit.params["Intercept"])
    assert result.real_ci == pytest.approx((expit(eta - t * se), expit(eta + t * se)), rel=1e-4)
    # Clustering by reader widens nothing away: the model's estimates match the pooled shares here.
    assert result.real == pytest.approx(0.55, abs=0.01) and result.synthetic == pytest.approx(0.33, abs=0.01)


def test_auc_equals_a_direct_count_of_ordered_pairs() -> None:
    records = paper_study()
    score = lambda r: stats.rating(r.label, r.confidence)  # noqa: E731
    result = stats.turing_mrmc(records).result
    for index, reader in enumerate(result.readers):
        mine = [r for r in records if r.reader == reader]
        synth = [score(r) for r in mine if r.truth == "synthetic"]
        real = [score(r) for r in mine if r.truth == "real"]
        pairs = sum(1.0 if s > t else 0.5 if s == t else 0.0 for s in synth for t in real)
        assert result.auc[0][index] == pytest.approx(pairs / (len(synth) * len(real)))


def test_the_rating_scale_orders_every_answer_and_treats_no_confidence_as_a_guess() -> None:
    order = [("real", c) for c in (5, 4, 3, 2, 1)] + [("synthetic", c) for c in (1, 2, 3, 4, 5)]
    assert [stats.rating(label, c) for label, c in order] == list(range(1, 11))
    assert stats.rating("real", None) == stats.rating("real", 1) == 5
    assert stats.rating("synthetic", None) == stats.rating("synthetic", 1) == 6


def test_labels_without_confidences_give_an_auc_equal_to_balanced_accuracy() -> None:
    records = [Record(r.reader, r.item, r.truth, r.label, None) for r in paper_study()]
    result = report.study_statistics(records)
    assert result.mrmc.result.auc_mean[0] == pytest.approx(result.bias_pooled.balanced_accuracy)
    assert result.mrmc.n_unrated == 400 and any("400 answer(s) had no confidence" in n for n in result.notes)


def test_p_values_and_shares_print_as_a_reader_expects() -> None:
    assert stats.format_p(3e-12) == "p < 0.0001" and stats.format_p(0.00042) == "p = 4.2e-04"
    assert stats.format_p(0.0404) == "p = 0.040" and stats.format_p(0.5) == "p = 0.50"
    assert stats.format_share(15 / 40) == "37.5%" and stats.format_share(13 / 40) == "32.5%"


def test_fool_rate_is_the_share_of_readers_calling_a_synthetic_item_real() -> None:
    records = [
        Record("a", "s1", "synthetic", "real"),
        Record("b", "s1", "synthetic", "synthetic"),
        Record("c", "s1", "synthetic", "real"),
        Record("a", "r1", "real", "real"),
    ]
    assert stats.fool_rates(records) == {"s1": pytest.approx(2 / 3)}


def test_no_answers_give_defined_values_with_reasons() -> None:
    result = report.study_statistics([])
    assert result.pooled.real.share is None and result.pooled.real.reason == "no answers"
    assert result.fleiss.value is None and result.clustered.real is None and result.mrmc.result is None
    assert result.verdict.kind == "not available"
    assert plain_summary(result) == ["No answers yet."]
    assert "No answers yet" in result.notes[0]


def test_one_reader_gives_accuracy_but_no_agreement() -> None:
    result = report.study_statistics([r for r in paper_study() if r.reader == "r1"])
    assert result.pooled.real.share == pytest.approx(27 / 50)
    assert result.fleiss.reason == "agreement needs at least two readers" and result.cohen == {}
    assert result.clustered.reason == "a clustered analysis needs at least two readers"


def test_every_answer_the_same_is_not_a_crash() -> None:
    records = [
        Record(f"r{i}", f"i{j}", "real" if j % 2 else "synthetic", "real", 3)
        for i in range(3)
        for j in range(10)
    ]
    result = report.study_statistics(records)
    assert result.fleiss.value is None and "every answer is the same" in result.fleiss.reason
    assert all(k.value is None for k in result.cohen.values())
    assert result.pooled.real.share == 1.0 and result.pooled.synthetic.share == 0.0
    assert result.mrmc.result.auc[0] == pytest.approx([0.5, 0.5, 0.5])


def test_a_reader_who_saw_one_class_only() -> None:
    records = paper_study()[:50]  # r0's real items only
    result = report.study_statistics(records)
    assert (
        result.per_reader["r0"].synthetic.share is None
        and result.per_reader["r0"].synthetic.reason == "no answers"
    )
    assert result.mrmc.result is None and "0 positive" in result.mrmc.reason
    assert result.clustered.reason in {
        "a clustered analysis needs at least two readers",
        "both truth classes need answers",
    }
    assert "No synthetic patches were answered." in plain_summary(result)


def test_a_class_answered_all_correctly_gives_no_clustered_estimate_but_no_crash() -> None:
    records = [
        Record(f"r{i}", f"i{j}", "real" if j % 2 else "synthetic", "real", 3)
        for i in range(2)
        for j in range(10)
    ]
    records[1] = Record("r0", "i1", "real", "synthetic", 3)  # real patches: not all correct
    result = stats.clustered(records)
    assert result.real is None and "every synthetic patch was answered wrongly" in result.reason


@pytest.mark.parametrize("seed", range(20))
def test_holm_adjustment_equals_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 0.2, size=int(rng.integers(1, 9)))
    p[rng.random(len(p)) < 0.3] = p[0]  # ties
    expected = multipletests(p, method="holm")[1]
    assert stats.holm_adjusted(list(p)) == pytest.approx(list(expected), abs=1e-12)


def test_holm_adjustment_by_hand() -> None:
    # Sorted 0.01 < 0.03 < 0.04: x3, x2, x1, then never below the one before, and at most 1.
    assert stats.holm_adjusted([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])
    assert stats.holm_adjusted([0.6, 0.9]) == [1.0, 1.0]
    assert stats.holm_adjusted([]) == []
