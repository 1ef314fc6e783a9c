"""The report, exports and galleries of a study with two synthetic arms, from answers given through
the product's own services."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from analysis import mrmc
from core.services import user_create
from evaluation import selectors
from gan.models import Dataset
from tests.turing.fixtures import arms_study, make_synthetic
from turing.models import Study, StudyItem
from turing.services import answer_next, answer_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_arm_study(real_lym: Dataset, manager: Any, media_root: Path) -> Study:
    """Four readers; arm "obvious" is always called synthetic, arm "convincing" always real; real
    patches are called real, with a confidence that varies by reader and item."""
    readers = [user_create(username=f"reader{k}", role="expert", validate=False)[0] for k in range(4)]
    arms = {"obvious": make_synthetic("set 1", 8, seed=1), "convincing": make_synthetic("set 2", 8, seed=2)}
    study = arms_study(real_lym, arms, readers, items_per_reader=16, created_by=manager, seed=9)
    arm = dict(StudyItem.objects.filter(study=study).values_list("token", "arm__name"))
    for k, reader in enumerate(readers):
        assignment = study.assignments.get(reader=reader)
        while not (upcoming := answer_next(assignment=assignment)).finished:
            label = "synthetic" if arm[upcoming.token] == "obvious" else "real"
            confidence = 5 if label == "synthetic" else 1 + (k + len(upcoming.token)) % 5
            answer_submit(
                study_id=study.pk, reader=reader, token=upcoming.token, label=label, confidence=confidence
            )
    return study


def _rows(client: Client, study: Study, kind: str) -> list[dict[str, str]]:
    response = client.get(reverse("evaluation:study_export", args=[study.pk, kind]))
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def test_the_report_shows_both_arms_and_which_fooled_readers_more(
    manager_client: Client, two_arm_study: Study
) -> None:
    html = manager_client.get(reverse("evaluation:study_report", args=[two_arm_study.pk])).content.decode()
    assert "Arms: which generator fools readers more?" in html
    assert "Arm convincing was harder to detect than arm obvious" in html
    assert "0.025 (0.05 / 2 arms, Bonferroni)" in html
    assert html.count("data:image/svg+xml;base64,") == 7  # the two arm charts beside the five
    result = selectors.study_figures(study=two_arm_study)
    assert result.arms is not None
    obvious, convincing = result.arms.arms
    assert (obvious.fool_rate.share, convincing.fool_rate.share) == (0.0, 1.0)
    assert obvious.fool_rate.n == convincing.fool_rate.n == 4 * 4


def test_every_export_row_names_its_arm(manager_client: Client, two_arm_study: Study, tmp_path: Path) -> None:
    answers = _rows(manager_client, two_arm_study, "answers")
    assert {(r["truth"], r["arm"]) for r in answers} == {
        ("real", ""),
        ("synthetic", "obvious"),
        ("synthetic", "convincing"),
    }
    summary = _rows(manager_client, two_arm_study, "summary")
    comparison = next(r for r in summary if r["scope"] == "arms obvious vs convincing")
    assert float(comparison["estimate"]) > 0.3 and float(comparison["p_value"]) < 0.05
    assert {r["scope"] for r in summary} >= {"arm obvious", "arm convincing"}
    # The ratings export, read by the MRMC program, gives the report's arm analysis.
    response = manager_client.get(reverse("evaluation:study_export", args=[two_arm_study.pk, "ratings"]))
    (tmp_path / "ratings.csv").write_bytes(b"".join(response.streaming_content))
    ratings, truth, mask, treatments, readers = mrmc.read_csv(tmp_path / "ratings.csv")
    again = mrmc.analyse(ratings, truth, case_mask=mask, treatments=treatments, readers=readers)
    report = selectors.study_figures(study=two_arm_study).arms
    assert report is not None and report.result is not None
    by_name = {t: i for i, t in enumerate(again.treatments)}
    for t, name in enumerate(report.result.treatments):
        assert again.auc[by_name[name]] == pytest.approx(report.result.auc[t])
    assert sorted(treatments) == ["convincing", "obvious"]
    mrmc_table = _rows(manager_client, two_arm_study, "mrmc")
    assert any(
        r["analysis"] == "arms as treatments" and r["treatment"] == "obvious - convincing" for r in mrmc_table
    )
    imrmc = _rows(manager_client, two_arm_study, "imrmc")
    assert {r["modalityID"] for r in imrmc} == {"truth", "obvious", "convincing"}


def test_each_arms_gallery_puts_the_most_convincing_first(
    manager_client: Client, expert_client: Client, two_arm_study: Study
) -> None:
    arm = two_arm_study.arms.get(name="convincing")
    url = reverse("evaluation:study_arm_gallery", args=[two_arm_study.pk, arm.pk])
    page = manager_client.get(url).content.decode()
    assert page.count("100.0% called it real (4 of 4)") == 4
    gallery = selectors.arm_gallery(arm=two_arm_study.arms.get(name="obvious"))
    assert [g["fool_rate"] for g in gallery] == [0.0] * 4
    assert expert_client.get(url).status_code in (302, 403)  # never for experts
