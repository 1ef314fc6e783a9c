"""The OR analysis against OR-DBM MRMC 2.51 on two published data sets (Van Dyke; Franken, whose
covariances reach the truncations at zero), and on designs of our own."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analysis import mrmc, planning

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]


REFERENCES = ("vandyke", "franken")


def _reference(name: str) -> Any:
    """NAME.json with every number kept as its printed text, so that its decimals are known."""
    return json.loads((DATA / f"{name}.json").read_text(), parse_float=str, parse_int=str)


def _close(ours: float, printed: str) -> bool:
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return abs(ours - float(printed)) <= 0.5 * 10**-decimals + 1e-12


@pytest.fixture(scope="module", params=REFERENCES)
def published(request: pytest.FixtureRequest) -> tuple[mrmc.MRMCResult, mrmc.MRMCResult, Any]:
    """Both treatments analysed together, the first alone, and what OR-DBM MRMC printed for the data."""
    ratings, truth, mask, treatments, readers = mrmc.read_csv(DATA / f"{request.param}.csv")
    both = mrmc.analyse(ratings, truth, case_mask=mask, treatments=treatments, readers=readers)
    first = mrmc.analyse(ratings[:1], truth, case_mask=mask[:1], treatments=treatments[:1], readers=readers)
    return both, first, _reference(request.param)


@pytest.fixture(scope="module")
def vandyke() -> tuple[mrmc.MRMCResult, mrmc.MRMCResult]:
    ratings, truth, mask, treatments, readers = mrmc.read_csv(DATA / "vandyke.csv")
    both = mrmc.analyse(ratings, truth, case_mask=mask, treatments=treatments, readers=readers)
    first = mrmc.analyse(ratings[:1], truth, case_mask=mask[:1], treatments=treatments[:1], readers=readers)
    return both, first


def test_the_designs_are_read_as_published() -> None:
    vandyke = _analysed("vandyke")
    assert vandyke.treatments == ["0", "1"] and vandyke.readers == ["0", "1", "2", "3", "4"]
    assert vandyke.n_positive == [45, 45] and vandyke.n_negative == [69, 69]
    franken = _analysed("franken")
    assert franken.treatments == ["1", "2"] and franken.readers == ["1", "2", "3", "4"]
    assert franken.n_positive == [67, 67] and franken.n_negative == [33, 33]


def _analysed(name: str) -> mrmc.MRMCResult:
    ratings, truth, mask, treatments, readers = mrmc.read_csv(DATA / f"{name}.csv")
    return mrmc.analyse(ratings, truth, case_mask=mask, treatments=treatments, readers=readers)


def test_franken_reaches_the_truncation_van_dyke_never_does() -> None:
    """Franken's Cov2 < Cov3: the fixed-reader error term drops (r - 1)(Cov2 - Cov3) for zero, as
    OR-DBM MRMC does; without the truncation chi-square would be 0.364 where it prints 0.32101."""
    franken = _analysed("franken")
    c = franken.components
    assert c.cov2 < c.cov3
    ms_t = franken.anova["MS_T"]
    assert math.isclose(franken.frrc_test["chi2"], ms_t / (c.var_error - c.cov1), rel_tol=1e-12)
    untruncated = ms_t / (c.var_error - c.cov1 + 3 * (c.cov2 - c.cov3))
    assert abs(untruncated - 0.364) < 0.001 and abs(franken.frrc_test["chi2"] - 0.32101) < 0.000005


def test_reader_aucs_match_or_dbm_mrmc(published: Any) -> None:
    both, _, ref = published
    for t, key in enumerate(("treatment_1", "treatment_2")):
        for ours, printed in zip(both.auc[t], ref["auc"][key], strict=True):
            assert _close(ours, printed), (key, ours, printed)
        assert _close(both.auc_mean[t], ref["auc_mean"][key])


def test_anova_and_variance_components_match(published: Any) -> None:
    both, _, ref = published
    for name in ("MS_T", "MS_R", "MS_TR"):
        assert _close(both.anova[name], ref["anova"][name]), name
    for t, key in enumerate(("MS_R_treatment_1", "MS_R_treatment_2")):
        assert _close(both.single[t].ms_r, ref["anova"][key]), key
    for name, printed in ref["or_components"].items():
        assert _close(getattr(both.components, name), printed), name


def test_random_reader_random_case_analysis_matches(published: Any) -> None:
    both, _, ref = published
    ref = ref["RRRC"]
    assert _close(both.rrrc_test["F"], ref["F"]) and _close(both.rrrc_test["ddf"], ref["ddf_H"])
    assert _close(both.rrrc_test["p"], ref["p"]) and _close(both.rrrc_test["error_ms"], ref["error_MS"])
    diff = both.differences[0].rrrc
    expected = ref["difference_1_minus_2"]
    assert _close(diff.estimate, expected["estimate"]) and _close(diff.stderr, expected["stderr"])
    assert _close(diff.low, expected["ci95"][0]) and _close(diff.high, expected["ci95"][1])
    for t, key in enumerate(("treatment_1", "treatment_2")):
        single, printed = both.single[t], ref["single_treatment"][key]
        assert _close(single.rrrc.stderr, printed["stderr"]) and _close(single.rrrc.df, printed["df"])
        assert _close(single.rrrc.low, printed["ci95"][0]) and _close(single.rrrc.high, printed["ci95"][1])
        assert _close(single.cov2, printed["cov2"])


def test_fixed_reader_analysis_matches(published: Any) -> None:
    both, _, ref = published
    ref = ref["FRRC"]
    assert _close(both.frrc_test["chi2"], ref["chi2"]) and both.frrc_test["df"] == int(ref["df"])
    assert _close(both.frrc_test["p"], ref["p"])
    diff = both.differences[0].frrc
    assert _close(diff.stderr, ref["difference_1_minus_2"]["stderr"])
    assert _close(diff.low, ref["difference_1_minus_2"]["ci95"][0])
    assert _close(diff.high, ref["difference_1_minus_2"]["ci95"][1])
    for t, key in enumerate(("treatment_1", "treatment_2")):
        single, printed = both.single[t], ref["single_treatment"][key]
        assert _close(single.frrc.stderr, printed["stderr"]) and _close(
            single.var_error, printed["var_error"]
        )
        assert _close(single.frrc.low, printed["ci95"][0]) and _close(single.frrc.high, printed["ci95"][1])
    per_reader = both.single_reader_differences
    for r, (se, p) in enumerate(
        zip(ref["single_reader_differences"]["stderr"], ref["single_reader_differences"]["p"], strict=True)
    ):
        assert _close(per_reader[r]["stderr"], se) and _close(per_reader[r]["p_value"], p), r


def test_fixed_case_analysis_matches(published: Any) -> None:
    both, _, ref = published
    ref = ref["RRFC"]
    diff = both.differences[0].rrfc
    printed = ref["difference_1_minus_2"]
    assert _close(diff.stderr, printed["stderr"]) and diff.df == int(printed["df"])
    assert _close(diff.p_value, printed["p"])
    assert _close(diff.low, printed["ci95"][0]) and _close(diff.high, printed["ci95"][1])
    for t, key in enumerate(("treatment_1", "treatment_2")):
        single, expected = both.single[t], ref["single_treatment"][key]
        assert _close(single.rrfc.stderr, expected["stderr"]) and single.rrfc.df == int(expected["df"])
        assert _close(single.rrfc.low, expected["ci95"][0]) and _close(single.rrfc.high, expected["ci95"][1])


def test_one_treatment_alone_matches(published: Any) -> None:
    _, first, ref = published
    ref = ref["one_treatment_only"]
    single = first.single[0]
    assert _close(single.auc_mean, ref["auc_mean"]) and _close(single.rrrc.stderr, ref["stderr"])
    assert _close(single.rrrc.df, ref["df"]) and _close(single.cov2, ref["cov2"])
    assert _close(single.var_error, ref["var_error"])
    assert _close(single.rrrc.low, ref["ci95"][0]) and _close(single.rrrc.high, ref["ci95"][1])
    assert first.components is None and not first.differences


def test_the_jackknife_by_ranks_equals_leaving_each_case_out(vandyke: Any) -> None:
    """The fast jackknife against the definition: K AUCs recomputed from scratch."""
    rng = np.random.default_rng(0)
    truth = np.array([True] * 7 + [False] * 9)
    ratings = rng.integers(1, 6, size=(2, 3, 16)).astype(float)  # many ties
    mask = np.ones((2, 16), dtype=bool)
    _, fast = mrmc.auc_and_covariance(ratings, truth, mask)

    def auc(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean((x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])))

    rows = np.array(
        [
            [
                auc(ratings[t, r, truth & (np.arange(16) != k)], ratings[t, r, ~truth & (np.arange(16) != k)])
                for k in range(16)
            ]
            for t in range(2)
            for r in range(3)
        ]
    )
    centred = rows - rows.mean(axis=1, keepdims=True)
    assert np.allclose(fast, 15 / 16 * centred @ centred.T)


def test_delong_agrees_with_the_jackknife_closely(vandyke: Any) -> None:
    ratings, truth, mask, _treatments, _readers = mrmc.read_csv(DATA / "vandyke.csv")
    delong = mrmc.analyse(ratings, truth, case_mask=mask, covariance="delong")
    jack, _ = vandyke
    assert delong.auc == jack.auc
    assert math.isclose(delong.components.var_error, jack.components.var_error, rel_tol=0.05)


def test_arms_sharing_the_negative_cases_each_with_their_own_positives() -> None:
    """Two arms against one real pool: arm B's patches are easy to spot, arm A's are not."""
    rng = np.random.default_rng(3)
    n_neg, n_pos = 40, 30
    truth = np.array([False] * n_neg + [True] * (2 * n_pos))
    mask = np.zeros((2, len(truth)), dtype=bool)
    mask[:, :n_neg] = True
    mask[0, n_neg : n_neg + n_pos] = True
    mask[1, n_neg + n_pos :] = True
    ratings = np.full((2, 6, len(truth)), np.nan)
    shift = np.r_[np.zeros(n_neg), np.zeros(n_pos), np.full(n_pos, 2.0)]  # arm B's patches rated higher
    for r in range(6):
        score = rng.normal(size=len(truth)) + shift
        ratings[:, r, :] = np.where(mask, score, np.nan)
    result = mrmc.analyse(ratings, truth, case_mask=mask, treatments=["A", "B"])
    assert result.n_positive == [n_pos, n_pos] and result.n_negative == [n_neg, n_neg]
    assert 0.35 < result.auc_mean[0] < 0.65 and result.auc_mean[1] > 0.85
    diff = result.differences[0].rrrc
    assert diff.high < 0 and diff.p_value < 0.01  # B is detected more easily than A, significantly


def test_a_reader_who_skipped_cases_is_refused_by_name() -> None:
    ratings = np.ones((1, 2, 6))
    ratings[0, 1, 2] = np.nan
    truth = np.array([True, True, True, False, False, False])
    with pytest.raises(mrmc.MRMCDesignError, match="reader B did not rate 1 of the 6 cases"):
        mrmc.analyse(ratings, truth, readers=["A", "B"])


def test_too_few_cases_of_one_truth_are_refused() -> None:
    with pytest.raises(mrmc.MRMCDesignError, match="1 positive and 3 negative"):
        mrmc.analyse(np.ones((1, 2, 4)), np.array([True, False, False, False]))


def test_one_reader_has_fixed_reader_figures_only() -> None:
    truth = np.array([True] * 5 + [False] * 5)
    ratings = np.arange(10, dtype=float)[::-1].reshape(1, 1, 10)
    result = mrmc.analyse(ratings, truth)
    assert result.single[0].rrrc is None and result.single[0].frrc is not None
    assert any("One reader" in note for note in result.notes)


def test_equivalence_sample_size_grows_as_the_margin_shrinks() -> None:
    pilot = planning.default_pilot(cases=80)
    wide, narrow = (planning.readers_needed(pilot, 200, delta) for delta in (0.15, 0.08))
    assert wide is not None and narrow is not None and wide < narrow
    # Case variance shared by all readers sets a floor: more readers of 80 cases cannot reach 0.07.
    assert planning.readers_needed(pilot, 80, 0.07) is None
    cases_wide = planning.cases_needed(pilot, 10, 0.15)
    assert cases_wide is not None and planning.equivalence_power(pilot, 10, cases_wide, 0.15) >= 0.8
    assert planning.equivalence_power(pilot, 10, cases_wide - 1, 0.15) < 0.8


def _command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analysis.mrmc", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_the_command_prints_a_table_and_json() -> None:
    table = _command(str(DATA / "vandyke.csv")).stdout
    assert "RRRC: F 4.4563, ddf 15.26, p 0.0517" in table and "0.82522360 to 0.96885048" in table
    data = json.loads(_command(str(DATA / "vandyke.csv"), "--json").stdout)
    assert math.isclose(data["rrrc_test"]["ddf"], 15.26, abs_tol=0.005)


def test_the_command_names_a_bad_file_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("reader,modality,case,truth,rating\n0,0,1,2,3\n")
    done = _command(str(bad))
    assert done.returncode == 2 and "truth must be 0 or 1" in done.stderr


def test_the_command_takes_capitalised_headers_and_decimal_truths(tmp_path: Path) -> None:
    text = (DATA / "vandyke.csv").read_text().splitlines()
    rows = [",".join(p if i != 3 else f"{p}.0" for i, p in enumerate(line.split(","))) for line in text[1:]]
    other = tmp_path / "other.csv"
    other.write_text("Reader,Modality,Case,Truth,Rating\n" + "\n".join(rows) + "\n")
    assert "RRRC: F 4.4563, ddf 15.26, p 0.0517" in _command(str(other)).stdout


def test_three_treatments_compare_every_pair_against_one_error_term() -> None:
    ratings, truth, mask, _, _readers = mrmc.read_csv(DATA / "vandyke.csv")
    three = np.concatenate([ratings, ratings[:1] + 0.0], axis=0)  # a third treatment: a copy of the first
    result = mrmc.analyse(three, truth, case_mask=np.vstack([mask, mask[:1]]), treatments=["1", "2", "3"])
    pairs = {(d.first, d.second): d for d in result.differences}
    assert set(pairs) == {("1", "2"), ("1", "3"), ("2", "3")}
    assert pairs[("1", "3")].rrrc.estimate == 0 and pairs[("1", "3")].rrrc.p_value == 1.0
    assert pairs[("1", "2")].rrrc.df == pairs[("2", "3")].rrrc.df == result.rrrc_test["ddf"]
    assert result.rrrc_test["F"] > 0 and 0 < result.rrrc_test["p"] < 1


# --- Each truncation, DeLong with a case mask, and the verdict's rule -----------------------------------


def _design(
    seed: int, readers: int, n_pos: int, n_neg: int, *, skill: float = 0.0, shared: float = 1.0
) -> Any:
    """Ratings [1, R, K] of a binormal study: a case effect shared by all readers (`shared`), reader noise,
    positives shifted by `skill`."""
    rng = np.random.default_rng(seed)
    truth = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    case = rng.normal(size=len(truth)) * shared
    ratings = case + rng.normal(size=(readers, len(truth))) + skill * truth
    return ratings[None], truth


def test_a_negative_cov2_is_truncated_at_zero_in_the_single_treatment_intervals() -> None:
    """Two readers whose errors run against each other: Cov2 < 0, which OR-DBM MRMC drops for zero in
    both the FRRC and the RRRC standard errors."""
    rng = np.random.default_rng(4)
    truth = np.r_[np.ones(30, bool), np.zeros(30, bool)]
    noise = rng.normal(size=60)
    ratings = np.array([[noise + truth, -noise + truth]])
    single = mrmc.analyse(ratings, truth).single[0]
    assert single.cov2 < 0
    assert math.isclose(single.frrc.stderr, math.sqrt(single.var_error / 2), rel_tol=1e-12)
    assert math.isclose(single.rrrc.stderr, math.sqrt(single.ms_r / 2), rel_tol=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_the_bounded_rrrc_variance_is_never_below_the_fixed_reader_variance(seed: int) -> None:
    ratings, truth = _design(seed, readers=2 + seed % 4, n_pos=10 + seed, n_neg=12, skill=0.3 * (seed % 3))
    result = mrmc.analyse(np.concatenate([ratings, ratings[:, ::-1] + 0.1]), truth)
    for single in result.single:
        assert single.rrrc_bounded.stderr >= single.frrc.stderr - 1e-15
        assert single.rrrc_bounded.stderr == max(single.rrrc.stderr, single.frrc.stderr)
        assert single.rrrc_bounded.df == single.rrrc.df  # the cautious Hillis df is kept
    d = result.differences[0]
    assert d.rrrc_bounded.stderr == max(d.rrrc.stderr, d.frrc.stderr)


def test_the_one_case_of_the_review_no_longer_claims_equivalence() -> None:
    """Two readers whose AUCs happen to lie close together (0.485 and 0.495 in the review's study): the
    RRRC interval was ten times narrower than the fixed-reader one and claimed equivalence."""
    for seed in range(200):
        ratings, truth = _design(seed, readers=2, n_pos=10, n_neg=10)
        single = mrmc.analyse(ratings, truth).single[0]
        if single.rrrc.stderr < 0.3 * single.frrc.stderr:
            break
    else:
        pytest.fail("no draw with a tiny RRRC variance")
    decision = mrmc.decide(single, 2, margin=0.3, alpha=0.05)
    assert decision.bounded and decision.outcome != "indistinguishable"
    assert decision.ci[1] - decision.ci[0] >= 2 * 1.959 * single.frrc.stderr


def test_equivalence_needs_the_minimum_number_of_readers_and_says_why() -> None:
    ratings, truth = _design(1, readers=6, n_pos=200, n_neg=200, shared=0.3)
    six = mrmc.analyse(ratings, truth).single[0]
    three = mrmc.analyse(ratings[:, :3], truth).single[0]
    assert mrmc.decide(six, 6, margin=0.1, alpha=0.05).outcome == "indistinguishable"
    few = mrmc.decide(three, 3, margin=0.1, alpha=0.05)
    assert few.within_margin and few.outcome == "inconclusive"
    assert "3 readers analysed: an equivalence verdict needs at least 4" in few.reason


def test_a_difference_from_chance_inside_the_margin_is_detectable_and_says_both() -> None:
    ratings, truth = _design(2, readers=8, n_pos=400, n_neg=400, skill=0.12, shared=0.3)
    single = mrmc.analyse(ratings, truth).single[0]
    decision = mrmc.decide(single, 8, margin=0.1, alpha=0.05)
    assert decision.outcome == "detectable" and decision.within_margin
    assert decision.level == 0.95 and decision.interval == decision.ci and decision.ci[0] > 0.5


def test_constant_readers_and_one_reader_give_no_equivalence() -> None:
    truth = np.r_[np.ones(5, bool), np.zeros(5, bool)]
    constant = mrmc.analyse(np.ones((1, 4, 10)), truth).single[0]
    flat = mrmc.decide(constant, 4, margin=0.1, alpha=0.05)
    assert flat.outcome == "inconclusive" and "no variation" in flat.reason
    alone = mrmc.analyse(np.arange(10.0)[None, None, ::-1], truth).single[0]
    assert mrmc.decide(alone, 1, margin=0.1, alpha=0.05).outcome == "inconclusive"


def test_perfect_readers_are_detectable() -> None:
    truth = np.r_[np.ones(6, bool), np.zeros(6, bool)]
    ratings = np.tile(truth.astype(float), (1, 3, 1))
    single = mrmc.analyse(ratings, truth).single[0]
    assert single.auc_mean == 1.0
    assert mrmc.decide(single, 3, margin=0.1, alpha=0.05).outcome == "detectable"


def _arms(seed: int, n_pos: int = 15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two arms with their own positives (n_pos each) and 30 shared negatives."""
    rng = np.random.default_rng(seed)
    n_neg = 30
    truth = np.r_[np.zeros(n_neg, bool), np.ones(2 * n_pos, bool)]
    mask = np.zeros((2, len(truth)), bool)
    mask[:, :n_neg] = True
    mask[0, n_neg : n_neg + n_pos] = True
    mask[1, n_neg + n_pos :] = True
    score = rng.normal(size=(4, len(truth))) + 0.5 * truth
    return np.where(mask[:, None, :], score[None], np.nan), truth, mask


def test_delong_with_a_case_mask_uses_each_arms_own_counts() -> None:
    """Each arm's DeLong variance is the one its own cases give alone (with the shared positive count
    over all arms it came out 5% too small for a 15-case arm), and close to the jackknife's."""
    ratings, truth, mask = _arms(7)
    both = mrmc.analyse(ratings, truth, case_mask=mask, covariance="delong")
    jack = mrmc.analyse(ratings, truth, case_mask=mask)
    for t in range(2):
        cases = mask[t]
        alone = mrmc.analyse(ratings[t : t + 1][:, :, cases], truth[cases], covariance="delong")
        assert np.allclose(both.auc_var[t], alone.auc_var[0], rtol=1e-12)
        assert math.isclose(both.single[t].var_error, jack.single[t].var_error, rel_tol=0.1)


def test_delong_refuses_treatments_that_share_some_positives_but_not_all() -> None:
    ratings, truth, mask = _arms(8)
    mask[1, 30] = True  # arm 2 also reads one of arm 1's positives
    ratings[1, :, 30] = 0.0
    with pytest.raises(mrmc.MRMCDesignError, match="share 1 of their positive cases but not all"):
        mrmc.analyse(ratings, truth, case_mask=mask, covariance="delong")
    assert mrmc.analyse(ratings, truth, case_mask=mask).single[1].var_error > 0  # the jackknife takes it


def test_an_arm_of_two_positive_cases_is_analysed() -> None:
    ratings, truth, mask = _arms(9, n_pos=2)
    result = mrmc.analyse(ratings, truth, case_mask=mask)
    assert result.n_positive == [2, 2] and all(s.frrc.stderr > 0 for s in result.single)


def test_the_command_prints_the_verdict(tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    lines = (DATA / "vandyke.csv").read_text().splitlines()
    one.write_text("\n".join([lines[0]] + [line for line in lines[1:] if line.split(",")[1] == "0"]) + "\n")
    data = json.loads(_command(str(one), "--json", "--margin", "0.1").stdout)
    assert data["verdict"]["outcome"] == "detectable" and data["verdict"]["interval"]["level"] == 0.95
    assert "0.5 ± 0.10" in data["verdict"]["rule"]
    both = json.loads(_command(str(DATA / "franken.csv"), "--json", "--margin", "0.1").stdout)
    assert set(both["verdict"]) == {"1", "2"}
    assert both["verdict"]["1"]["variance_bounded_by_frrc"] is True
    table = _command(str(DATA / "franken.csv"), "--margin", "0.1").stdout
    assert "1: detectable, 95% CI" in table and "Rule: Detectable" in table
    assert "verdict" not in json.loads(_command(str(one), "--json").stdout)
    refused = _command(str(one), "--margin", "0.7")
    assert refused.returncode == 2 and "--margin must lie between 0 and 0.5" in refused.stderr


def test_a_pilot_planned_for_another_ratio_scales_its_case_variance() -> None:
    """At AUC 0.5 the case variance is about (1/n1 + 1/n0) / 12: a 3:1 design has a third more of it
    than a 1:1 pilot of as many cases (the literature's values, exactly by Hanley & McNeil: more still)."""
    even = planning.default_pilot(cases=120)
    skewed = even.with_share(0.25)
    assert math.isclose(skewed.var_error / even.var_error, 4 / 3) and skewed.positive_share == 0.25
    assert math.isclose(skewed.with_share(0.5).var_error, even.var_error)
    exact = planning.default_pilot(cases=120, positive_share=0.25)
    assert exact.var_error / even.var_error > 4 / 3
    assert planning.equivalence_power(exact, 10, 120, 0.1) < planning.equivalence_power(even, 10, 120, 0.1)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        even.with_share(1.0)


def test_the_planner_counts_no_power_below_the_verdicts_minimum_of_readers() -> None:
    pilot = planning.default_pilot(cases=400)
    assert planning.equivalence_power(pilot, mrmc.MIN_EQUIVALENCE_READERS - 1, 400, 0.2) == 0.0
    assert planning.equivalence_power(pilot, mrmc.MIN_EQUIVALENCE_READERS, 400, 0.2) > 0.8
    assert planning.readers_needed(pilot, 400, 0.2) == mrmc.MIN_EQUIVALENCE_READERS
