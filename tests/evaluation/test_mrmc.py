"""The OR analysis against OR-DBM MRMC 2.51 on the Van Dyke data, and on designs of our own."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evaluation import mrmc

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]


def _reference() -> Any:
    """reference.json with every number kept as its printed text, so that its decimals are known."""
    return json.loads((DATA / "reference.json").read_text(), parse_float=str, parse_int=str)


def _close(ours: float, printed: str) -> bool:
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return abs(ours - float(printed)) <= 0.5 * 10**-decimals + 1e-12


@pytest.fixture(scope="module")
def vandyke() -> tuple[mrmc.MRMCResult, mrmc.MRMCResult]:
    ratings, truth, mask, treatments, readers = mrmc.read_csv(DATA / "vandyke.csv")
    both = mrmc.analyse(ratings, truth, case_mask=mask, treatments=treatments, readers=readers)
    first = mrmc.analyse(ratings[:1], truth, case_mask=mask[:1], treatments=treatments[:1], readers=readers)
    return both, first


def test_the_design_is_read_as_published(vandyke: Any) -> None:
    both, _ = vandyke
    assert both.treatments == ["0", "1"] and both.readers == ["0", "1", "2", "3", "4"]
    assert both.n_positive == [45, 45] and both.n_negative == [69, 69]


def test_reader_aucs_match_or_dbm_mrmc(vandyke: Any) -> None:
    both, _ = vandyke
    ref = _reference()
    for t, key in enumerate(("treatment_1", "treatment_2")):
        for ours, printed in zip(both.auc[t], ref["auc"][key], strict=True):
            assert _close(ours, printed), (key, ours, printed)
        assert _close(both.auc_mean[t], ref["auc_mean"][key])


def test_anova_and_variance_components_match(vandyke: Any) -> None:
    both, _ = vandyke
    ref = _reference()
    for name in ("MS_T", "MS_R", "MS_TR"):
        assert _close(both.anova[name], ref["anova"][name]), name
    for t, key in enumerate(("MS_R_treatment_1", "MS_R_treatment_2")):
        assert _close(both.single[t].ms_r, ref["anova"][key]), key
    for name, printed in ref["or_components"].items():
        assert _close(getattr(both.components, name), printed), name


def test_random_reader_random_case_analysis_matches(vandyke: Any) -> None:
    both, _ = vandyke
    ref = _reference()["RRRC"]
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


def test_fixed_reader_analysis_matches(vandyke: Any) -> None:
    both, _ = vandyke
    ref = _reference()["FRRC"]
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


def test_fixed_case_analysis_matches(vandyke: Any) -> None:
    both, _ = vandyke
    ref = _reference()["RRFC"]
    diff = both.differences[0].rrfc
    printed = ref["difference_1_minus_2"]
    assert _close(diff.stderr, printed["stderr"]) and diff.df == int(printed["df"])
    assert _close(diff.p_value, printed["p"])
    assert _close(diff.low, printed["ci95"][0]) and _close(diff.high, printed["ci95"][1])
    for t, key in enumerate(("treatment_1", "treatment_2")):
        single, expected = both.single[t], ref["single_treatment"][key]
        assert _close(single.rrfc.stderr, expected["stderr"]) and single.rrfc.df == int(expected["df"])
        assert _close(single.rrfc.low, expected["ci95"][0]) and _close(single.rrfc.high, expected["ci95"][1])


def test_one_treatment_alone_matches(vandyke: Any) -> None:
    _, first = vandyke
    ref = _reference()["one_treatment_only"]
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
    pilot = mrmc.default_pilot(cases=80)
    wide, narrow = (mrmc.readers_needed(pilot, 200, delta) for delta in (0.15, 0.08))
    assert wide is not None and narrow is not None and wide < narrow
    # Case variance shared by all readers sets a floor: more readers of 80 cases cannot reach 0.07.
    assert mrmc.readers_needed(pilot, 80, 0.07) is None
    cases_wide = mrmc.cases_needed(pilot, 10, 0.15)
    assert cases_wide is not None and mrmc.equivalence_power(pilot, 10, cases_wide, 0.15) >= 0.8
    assert mrmc.equivalence_power(pilot, 10, cases_wide - 1, 0.15) < 0.8


def _command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evaluation.mrmc", *args], cwd=REPO, capture_output=True, text=True, timeout=60
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
