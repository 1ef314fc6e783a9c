from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from turing.models import Study
from turing.services import answer_next, answer_submit, study_invite

pytestmark = pytest.mark.django_db


def _answer_all(study: Study, reader: Any, label_for: Any) -> None:
    assignment = study_invite(study=study, reader=reader)
    while not (upcoming := answer_next(assignment=assignment)).finished:
        truth = study.items.get(token=upcoming.token).truth
        answer_submit(
            study_id=study.pk, reader=reader, token=upcoming.token, label=label_for(truth), confidence=4
        )


@pytest.fixture
def answered(study: Study, expert: Any, other_expert: Any) -> Study:
    _answer_all(study, expert, lambda truth: truth)  # always right
    _answer_all(study, other_expert, lambda truth: "real")  # always says real
    return study


def _rows(response: Any) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    assert "\r\n" in text
    return list(csv.reader(io.StringIO(text)))


def test_report_page_shows_tables_charts_and_a_careful_summary(
    manager_client: Client, answered: Study
) -> None:
    page = manager_client.get(reverse("evaluation:study_report", args=[answered.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "real patches were called real 100.0% of the time (10 of 10" in html
    assert "synthetic patches were called synthetic 50.0% of the time (5 of 10" in html
    # R1 is always right (AUC 1), R2 says "real" to everything (AUC 0.5): two readers that far apart
    # leave the random-reader interval too wide for any claim.
    assert "Verdict: inconclusive" in html and "R1" in html and "R2" in html
    assert html.count("data:image/svg+xml;base64,") == 5  # forest, ROC, ratings, answers, fool rates
    assert "The rule." in html and "0.40 to 0.60" in html
    for name in ("evaluation:study_fig5", "evaluation:study_fool_rates"):
        chart = manager_client.get(reverse(name, args=[answered.pk]))
        assert chart["Content-Type"] == "image/svg+xml" and b"<svg" in chart.content


def test_report_on_a_study_without_answers_says_so(manager_client: Client, study: Study) -> None:
    page = manager_client.get(reverse("evaluation:study_report", args=[study.pk]))
    assert page.status_code == 200 and b"No answers yet" in page.content


def test_tidy_answers_export(manager_client: Client, answered: Study) -> None:
    rows = _rows(manager_client.get(reverse("evaluation:study_export", args=[answered.pk, "answers"])))
    header, body = rows[0], [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert (
        header[:2] == ["study", "reader"]
        and header[6:9] == ["position", "read", "item_token"]
        and len(body) == 20
    )
    assert {row["read"] for row in body} == {"1"}  # no repeat reads in this study
    assert {row["reader"] for row in body} == {"R1", "R2"}  # pseudonymous by default
    assert {row["truth"] for row in body} == {"real", "synthetic"}
    from datetime import datetime

    from turing.models import Answer

    for row in body:
        shown_at, answered_at = (
            datetime.fromisoformat(row["shown_at"]),
            datetime.fromisoformat(row["answered_at"]),
        )
        assert shown_at.utcoffset() is not None and answered_at >= shown_at
        assert float(row["seconds_taken"]) == pytest.approx(
            (answered_at - shown_at).total_seconds(), abs=0.002
        )
        assert row["arm"] == ("synthetic" if row["truth"] == "synthetic" else "")  # the one arm
        assert row["reader_role"] == row["reader_years"] == ""  # this study asks no profile
    first = Answer.objects.get(item__token=body[0]["item_token"], assignment__reader__username="expert-a")
    assert datetime.fromisoformat(body[0]["answered_at"]) == first.answered_at
    named = _rows(
        manager_client.get(reverse("evaluation:study_export", args=[answered.pk, "answers"]) + "?names=1")
    )
    assert {row[1] for row in named[1:]} == {"expert-a", "expert-b"}


def test_summary_and_imrmc_exports(manager_client: Client, answered: Study) -> None:
    summary = _rows(manager_client.get(reverse("evaluation:study_export", args=[answered.pk, "summary"])))
    header = summary[0]
    assert {"clopper_pearson_low", "wilson_low", "gee_bias_reduced_t_low", "rrrc_low"} <= set(header)
    rows = [dict(zip(header, row, strict=True)) for row in summary[1:]]
    pooled_real = next(r for r in rows if r["scope"] == "pooled" and r["measure"] == "real called real")
    assert (pooled_real["successes"], pooled_real["n"], pooled_real["estimate"]) == ("10", "10", "1.0")
    gee = next(r for r in rows if r["scope"] == "GEE (reader clusters)")
    assert gee["clopper_pearson_low"] == ""  # a GEE interval never sits under another method's name
    assert rows[0]["measure"] == "protocol hash" and len(rows[0]["note"]) == 64
    assert rows[1]["measure"] == "record head" and len(rows[1]["note"]) == 64
    assert rows[2]["measure"] == "verdict: inconclusive"
    imrmc = _rows(manager_client.get(reverse("evaluation:study_export", args=[answered.pk, "imrmc"])))
    assert imrmc[0] == ["readerID", "caseID", "modalityID", "score"]
    truth_rows = [r for r in imrmc[1:] if r[0] == "-1"]
    assert len(truth_rows) == 10 and {r[3] for r in truth_rows} == {"0", "1"}
    scores = [r for r in imrmc[1:] if r[0] in {"R1", "R2"}]
    assert len(scores) == 20 and {r[3] for r in scores} == {"2", "9"}  # real/4 and synthetic/4


def test_the_ratings_export_gives_the_reports_analysis_in_any_mrmc_program(
    manager_client: Client, answered: Study, tmp_path: Any
) -> None:
    from analysis import mrmc
    from evaluation.selectors import study_figures

    text = b"".join(
        manager_client.get(
            reverse("evaluation:study_export", args=[answered.pk, "ratings"])
        ).streaming_content
    )
    (tmp_path / "ratings.csv").write_bytes(text)
    ratings, truth, mask, treatments, readers = mrmc.read_csv(tmp_path / "ratings.csv")
    again = mrmc.analyse(ratings, truth, case_mask=mask, treatments=treatments, readers=readers)
    report = study_figures(study=answered).mrmc.result
    assert readers == ["R1", "R2"] and again.auc == report.auc
    assert again.single[0].rrrc == report.single[0].rrrc
    table = _rows(manager_client.get(reverse("evaluation:study_export", args=[answered.pk, "mrmc"])))
    assert table[0] == ["analysis", "treatment", "reader", "measure", "value"]
    aucs = {(r[0], r[2]): float(r[4]) for r in table[1:] if r[3] == "AUC"}
    assert aucs[("ratings", "R1")] == 1.0 and aucs[("ratings", "R2")] == 0.5


def test_exports_neutralise_spreadsheet_formulas(manager_client: Client, answered: Study) -> None:
    Study.objects.filter(pk=answered.pk).update(name='=HYPERLINK("http://evil","x")')
    rows = _rows(manager_client.get(reverse("evaluation:study_export", args=[answered.pk, "answers"])))
    assert rows[1][0] == '\'=HYPERLINK("http://evil","x")'


def test_export_api_is_for_study_managers(
    manager_client: Client, expert_client: Client, answered: Study
) -> None:
    url = reverse("api_study_export", args=[answered.pk, "answers"])
    assert expert_client.get(url).status_code == 403
    response = manager_client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert len(_rows(response)) == 21
    assert manager_client.get(reverse("api_study_export", args=[answered.pk, "other"])).status_code == 404


def test_evaluation_pages_are_for_study_managers(expert_client: Client, answered: Study) -> None:
    assert expert_client.get(reverse("evaluation:study_report", args=[answered.pk])).status_code == 403
    assert (
        expert_client.get(reverse("evaluation:study_export", args=[answered.pk, "answers"])).status_code
        == 403
    )


@pytest.mark.parametrize("code", [*range(0x00, 0x20), 0x7F, 0x85, 0x9F])
def test_csv_cells_starting_with_a_control_character_are_quoted(code: int) -> None:
    from evaluation.csv_export import safe_cell

    assert safe_cell(chr(code) + "=1+1") == "'" + chr(code) + "=1+1"


@pytest.mark.parametrize("text", ["=SUM(A1)", "+1", "-1+2", "@cmd", "\uff1d1+1", "\uff20x"])
def test_csv_cells_starting_a_formula_are_quoted(text: str) -> None:
    from evaluation.csv_export import safe_cell

    assert safe_cell(text) == "'" + text
    assert safe_cell("plain text") == "plain text" and safe_cell(-1.5) == -1.5


def test_every_answer_row_names_its_patchs_dataset_file_and_generator(
    manager_client: Client, study: Study, expert: Any, synthetic_lym: Any
) -> None:
    synthetic_lym.provenance = {"generator": {"name": "diffusion v2", "checkpoint_sha256": "ab" * 32}}
    synthetic_lym.save(update_fields=["provenance"])
    _answer_all(study, expert, lambda truth: truth)
    rows = _rows(manager_client.get(reverse("evaluation:study_export", args=[study.pk, "answers"])))
    header, body = rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert header[-4:] == ["dataset", "source_file", "generator", "checkpoint_sha256"]
    real = [r for r in body if r["truth"] == "real"]
    synthetic = [r for r in body if r["truth"] == "synthetic"]
    assert real and all(r["dataset"] == "real LYM" and r["source_file"].startswith("LYM/") for r in real)
    assert synthetic and all(
        (r["dataset"], r["generator"], r["checkpoint_sha256"]) == ("synthetic LYM", "diffusion v2", "ab" * 32)
        for r in synthetic
    )


def test_the_reports_figures_are_computed_once_per_state_of_the_record(
    manager_client: Client, answered: Study, other_expert: Any, monkeypatch: Any
) -> None:
    """Later views reuse the figures until the record moves (a new answer); the record's own check runs
    at every view, so an edit behind the application shows on a page whose figures were kept."""
    from evaluation import report_page
    from turing.models import Answer

    computed = []
    real = report_page.study_figures_context
    monkeypatch.setattr(report_page, "study_figures_context", lambda **kw: computed.append(1) or real(**kw))
    url = reverse("evaluation:study_report", args=[answered.pk])
    first = manager_client.get(url).content.decode()
    second = manager_client.get(url).content.decode()
    assert len(computed) == 1 and "Record intact" in first and "Record intact" in second
    late = user_create_expert("late-reader")
    assignment = study_invite(study=answered, reader=late)
    token = answer_next(assignment=assignment).token
    answer_submit(study_id=answered.pk, reader=late, token=token, label="real", confidence=2)
    manager_client.get(url)
    assert len(computed) == 2
    Answer.objects.filter(assignment__study=answered, position=0).update(label="synthetic")
    tampered = manager_client.get(url).content.decode()
    assert len(computed) == 2 and "The record changed" in tampered


def user_create_expert(name: str) -> Any:
    from core.services import user_create

    return user_create(username=name, role="expert", validate=False)[0]
