"""The verdict, from studies built and answered through the services as readers would answer them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analysis import report, stats
from analysis.summary import plain_summary
from core.services import user_create
from evaluation.exports import summary_rows
from evaluation.selectors import study_figures
from evaluation.templatetags.report import seconds_band
from gan.models import Source
from tests.turing.fixtures import answer_next_item, create_study, make_patches
from turing.models import Study, StudyEvent
from turing.services import (
    StudyError,
    answer_next,
    answer_submit,
    study_invite,
    study_protocol_set,
)

pytestmark = pytest.mark.django_db

Answerer = Callable[[int, str, np.random.Generator], tuple[str, int | None]]


def _study(n_real: int, n_synthetic: int, readers: int, **options: Any) -> Study:
    real = make_patches("real", n_real, source=Source.REAL, seed=1)
    synthetic = make_patches("synthetic", n_synthetic, source=Source.SYNTHETIC, seed=2)
    experts = [
        user_create(username=f"reader-{i}", role="expert", password="x" * 20, validate=False)[0]
        for i in range(readers)
    ]
    return create_study(
        name="verdict",
        real_datasets=[real],
        synthetic_datasets=[synthetic],
        items_per_reader=n_real + n_synthetic,
        real_parts=n_real,
        synthetic_parts=n_synthetic,
        readers=experts,
        seed=5,
        **options,
    )


def _answer(study: Study, answerer: Answerer, seed: int = 0) -> None:
    """Each answer's randomness is a function of (seed, reader, patch): the same whatever the order."""
    truth = dict(study.items.values_list("token", "truth"))
    content = dict(study.items.values_list("token", "patch__content_hash"))
    for index, assignment in enumerate(study.assignments.order_by("id").select_related("reader")):
        while not (upcoming := answer_next(assignment=assignment)).finished:
            rng = np.random.default_rng([seed, index, int(content[upcoming.token][:12], 16)])
            label, confidence = answerer(index, truth[upcoming.token], rng)
            answer_next_item(assignment, label, confidence=confidence)


def test_readers_who_lean_to_real_and_separate_the_wrong_way_are_not_called_fooled(media_root: Path) -> None:
    """The audit's study: 5 readers x 80 items; synthetic patches called real 70% of the time, real ones
    59.5%, reader AUC below 0.5 for most readers. It once printed "indistinguishable" (TOST p = 0.03)."""
    study = _study(40, 40, 5)
    real_called_real = [24, 24, 23, 24, 24]  # 119 of 200 = 59.5%
    synthetic_called_real = [28, 28, 28, 28, 28]  # 140 of 200 = 70%
    quota = {(r, "real"): real_called_real[r] for r in range(5)}
    quota |= {(r, "synthetic"): synthetic_called_real[r] for r in range(5)}
    items = list(study.items.values_list("token", "truth", "patch__content_hash"))
    called_real = set()  # each reader calls real the patches of each truth that come first in an order
    for r in range(5):  # of their own, a hash of (reader, patch): the same data on every run
        for truth in ("real", "synthetic"):
            mine = sorted(
                (hashlib.sha256(f"{r}:{h}".encode()).digest(), t) for t, k, h in items if k == truth
            )
            called_real |= {(r, token) for _, token in mine[: quota[(r, truth)]]}
    for index, assignment in enumerate(study.assignments.order_by("id").select_related("reader")):
        while not (upcoming := answer_next(assignment=assignment)).finished:
            digest = next(h for t, _, h in items if t == upcoming.token)
            confidence = int(np.random.default_rng([9, index, int(digest[:12], 16)]).integers(1, 6))
            answer_submit(
                study_id=study.pk,
                reader=assignment.reader,
                token=upcoming.token,
                label="real" if (index, upcoming.token) in called_real else "synthetic",
                confidence=confidence,
            )
    result = study_figures(study=study)
    assert result.pooled.synthetic.share == pytest.approx(0.30) and result.pooled.real.share == pytest.approx(
        0.595
    )
    assert result.verdict.kind != "indistinguishable"
    assert result.verdict.kind in {"reversed", "inconclusive"}
    assert result.bias_pooled.called_real == pytest.approx(259 / 400)
    summary = " ".join(plain_summary(result))
    assert "indistinguishable" not in summary.lower() and "could not tell" not in summary
    assert (
        'leaned towards answering "real"' in summary and f"{stats.format_share(259 / 400)} of all" in summary
    )


def test_readers_who_answer_real_to_everything_in_a_3_to_1_study_show_no_skill(media_root: Path) -> None:
    study = _study(30, 10, 4)
    _answer(study, lambda r, truth, rng: ("real", 3))
    result = study_figures(study=study)
    assert result.pooled.overall.share == pytest.approx(0.75)
    assert result.pooled.overall.p_value is None and "not 1:1" in result.pooled.overall.reason
    assert result.mrmc.result.auc_mean[0] == pytest.approx(0.5)
    assert result.mrmc.balanced.auc_mean[0] == pytest.approx(0.5)
    assert result.bias_pooled.balanced_accuracy == pytest.approx(0.5)
    # Every patch got the same answer: no information, so no claim either way.
    assert result.verdict.kind == "inconclusive" and "same" in result.verdict.headline


def test_readers_who_separate_perfectly_make_it_detectable(media_root: Path) -> None:
    study = _study(12, 12, 3)
    _answer(study, lambda r, truth, rng: (truth, int(rng.integers(1, 6))))
    result = study_figures(study=study)
    assert result.mrmc.result.auc_mean[0] == 1.0
    assert result.verdict.kind == "detectable" and result.verdict.ci[0] > 0.5


def test_readers_with_no_skill_over_enough_readers_and_items_are_indistinguishable(media_root: Path) -> None:
    study = _study(60, 60, 8)

    def guess(r: int, truth: str, rng: np.random.Generator) -> tuple[str, int | None]:
        return ("real" if rng.random() < 0.5 else "synthetic"), int(rng.integers(1, 6))

    _answer(study, guess, seed=4)
    result = study_figures(study=study)
    low, high = result.verdict.ci_tost
    assert result.verdict.kind == "indistinguishable", result.verdict.headline
    assert 0.4 < low < 0.5 < high < 0.6
    headline = plain_summary(result)[0]
    assert "could not tell synthetic from real patches within the pre-set margin" in headline
    assert "mean reader AUC within 0.5 ± 0.10: 90% CI" in headline


def test_the_verdict_follows_the_studys_own_margin_not_a_server_setting(
    media_root: Path, settings: Any
) -> None:
    study = _study(60, 60, 8, equivalence_margin=0.02)

    def guess(r: int, truth: str, rng: np.random.Generator) -> tuple[str, int | None]:
        return ("real" if rng.random() < 0.5 else "synthetic"), int(rng.integers(1, 6))

    _answer(study, guess, seed=4)
    before = study_figures(study=study).verdict
    settings.DEFAULT_EQUIVALENCE_MARGIN = 0.25
    after = study_figures(study=Study.objects.get(pk=study.pk)).verdict
    assert before == after and before.kind == "inconclusive"  # 0.02 is too narrow for 8 x 120
    assert "about" in before.advice and "readers" in before.advice
    with pytest.raises(StudyError, match="frozen"):
        study_protocol_set(study=study, equivalence_margin=0.25, alpha=0.05)


def test_the_protocol_can_change_until_the_first_answer(media_root: Path) -> None:
    study = _study(4, 4, 1)
    study_protocol_set(study=study, equivalence_margin=0.15, alpha=0.01)
    assert Study.objects.get(pk=study.pk).equivalence_margin == 0.15
    with pytest.raises(StudyError, match="margin must be from"):
        study_protocol_set(study=study, equivalence_margin=0.6, alpha=0.05)


def test_a_study_with_items_per_reader_says_why_there_is_no_verdict(media_root: Path) -> None:
    study = _study(6, 6, 2, same_items_for_all=False)
    _answer(study, lambda r, truth, rng: (truth, 3))
    result = study_figures(study=study)
    assert (
        result.verdict.kind == "not available"
        and "different items for each reader" in result.verdict.headline
    )


def _answer_some(study: Study, answerer: Answerer, readers: int, seed: int = 0) -> None:
    """As `_answer`, for the first `readers` assignments only."""
    truth = dict(study.items.values_list("token", "truth"))
    for index, assignment in enumerate(study.assignments.order_by("id").select_related("reader")[:readers]):
        while not (upcoming := answer_next(assignment=assignment)).finished:
            rng = np.random.default_rng([seed, index, len(upcoming.token)])
            label, confidence = answerer(index, truth[upcoming.token], rng)
            answer_next_item(assignment, label, confidence=confidence)


def _perfect(r: int, truth: str, rng: np.random.Generator) -> tuple[str, int | None]:
    return truth, int(rng.integers(1, 6))


def test_the_verdict_waits_for_the_planned_readers_and_says_how_many_have_finished(media_root: Path) -> None:
    """The stopping rule: no verdict while the plan is incomplete, however clear the data already look."""
    study = _study(8, 8, 3)
    _answer_some(study, _perfect, readers=2)
    interim = study_figures(study=study).verdict
    assert Study.objects.get(pk=study.pk).planned_readers == 3  # the readers enrolled at the first answer
    assert interim.kind == "interim" and interim.ci is None
    assert interim.headline.startswith("Interim: 2 of 3 planned readers have finished")
    assert "Stopping rule: the verdict is given once the 3 planned readers" in interim.rule
    _answer_some(study, _perfect, readers=3)
    final = study_figures(study=study).verdict
    assert final.kind == "detectable" and not final.exploratory and "Exploratory" not in final.headline


def test_a_reader_enrolled_beyond_the_plan_after_the_freeze_is_an_amendment(media_root: Path) -> None:
    study = _study(8, 8, 3)
    _answer_some(study, _perfect, readers=3)
    extra = user_create(username="reader-late", role="expert", password="x" * 20, validate=False)[0]
    study_invite(study=study, reader=extra)
    amendment = study.events.get(kind=StudyEvent.Kind.AMENDMENT)
    assert amendment.before == {"planned_readers": 3} and amendment.after["readers"] == 4
    _answer_some(study, _perfect, readers=4)
    verdict = study_figures(study=study).verdict
    assert verdict.exploratory and verdict.headline.startswith("Exploratory: readers were enrolled beyond")


def test_a_planned_number_above_the_enrolled_readers_is_kept_and_readers_up_to_it_are_no_amendment(
    media_root: Path,
) -> None:
    study = _study(8, 8, 2, planned_readers=3)
    _answer_some(study, _perfect, readers=2)
    assert study_figures(study=study).verdict.kind == "interim"
    late = user_create(username="reader-third", role="expert", password="x" * 20, validate=False)[0]
    study_invite(study=study, reader=late)
    assert not study.events.filter(kind=StudyEvent.Kind.AMENDMENT).exists()
    _answer_some(study, _perfect, readers=3)
    assert study_figures(study=study).verdict.kind == "detectable"


def test_a_difference_inside_the_margin_says_both_and_the_excluded_reader_note_reads_in_the_singular(
    media_root: Path,
) -> None:
    records = []
    rng = np.random.default_rng(3)
    for r in range(8):
        for k in range(400):
            synthetic = k % 2 == 1
            z = rng.normal() + (0.15 if synthetic else 0.0)
            label = "synthetic" if z > 0 else "real"
            confidence = min(5, 1 + int(abs(z) / 0.4))
            records.append(
                stats.Record(f"R{r}", f"i{k}", "synthetic" if synthetic else "real", label, confidence)
            )
    records.append(stats.Record("R9", "i0", "real", "real", 3))  # a reader still reading
    result = report.study_statistics(records, protocol=stats.Protocol(margin=0.1))
    v = result.verdict
    assert v.kind == "detectable" and v.within_margin, v.headline
    assert "above 0.5" in v.headline and "it also lies inside the pre-set margin" in v.headline
    assert any("R9 had not, and is left out" in note for note in result.notes)


def test_the_summary_export_carries_both_intervals_under_their_levels() -> None:
    rng = np.random.default_rng(5)
    records = [
        stats.Record(f"R{r}", f"i{k}", truth, truth if rng.random() < 0.7 else "real", 3)
        for r in range(5)
        for k, truth in enumerate(["real", "synthetic"] * 20)
    ]
    result = report.study_statistics(records, protocol=stats.Protocol(alpha=0.01))
    rows = {row["measure"]: row for row in summary_rows(result=result)}
    ninety_eight, ninety_nine = rows["verdict interval, 98% RRRC"], rows["verdict interval, 99% RRRC"]
    assert (ninety_eight["rrrc_low"], ninety_eight["rrrc_high"]) == result.verdict.ci_tost
    assert (ninety_nine["rrrc_low"], ninety_nine["rrrc_high"]) == result.verdict.ci
    resting = ninety_nine if result.verdict.level == 0.99 else ninety_eight
    assert "the verdict rests on this one" in resting["note"]


@pytest.mark.parametrize(
    ("low", "high", "printed"),
    [(0.61, 0.64, "0.61\N{EN DASH}0.64 s"), (1.2, 3.4, "1.2\N{EN DASH}3.4 s"), (0.6, 0.6, "0.6 s")],
)
def test_reading_time_bands_never_print_the_same_number_twice(low: float, high: float, printed: str) -> None:
    assert seconds_band(low, high) == printed


def test_the_stopping_rule_reads_in_the_singular_for_one_planned_reader() -> None:
    one = stats.verdict_rule(stats.Protocol(planned_readers=1, planned_items=10))
    assert "once the 1 planned reader has answered all 10 planned items" in one
    three = stats.verdict_rule(stats.Protocol(planned_readers=3, planned_items=10))
    assert "once the 3 planned readers have each answered all 10 planned items" in three
