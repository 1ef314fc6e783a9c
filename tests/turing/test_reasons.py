"""Why synthetic? Reasons and a click after "synthetic" answers only, in the exports and the report."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from gan.models import Dataset
from tests.turing.fixtures import study_for
from tests.turing.test_api import _csrf_client
from turing.models import Answer, Study, StudyEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def asking(real_lym: Dataset, synthetic_lym: Dataset, expert: Any) -> Study:
    return study_for(
        real_lym,
        synthetic_lym,
        [expert],
        name="why",
        items_per_reader=4,
        ask_reasons=True,
        reasons=["nuclei", "colour", "other"],
    )


def _post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(
        url, body, content_type="application/json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
    )


def test_reasons_go_with_synthetic_answers_only(
    asking: Study, expert: Any, manager_client: Client, study: Study
) -> None:
    client = _csrf_client(expert)
    answer_url = reverse("turing:api_answer", args=[asking.pk])
    reasons_url = reverse("turing:api_reasons", args=[asking.pk])
    first = client.get(reverse("turing:api_next", args=[asking.pk])).json()["item"]["token"]
    second = _post(client, answer_url, {"token": first, "label": "synthetic"}).json()["next"]["item"]["token"]
    assert _post(client, reasons_url, {"token": first, "reasons": ["teeth"]}).json()["detail"] == (
        "Unknown reason(s) 'teeth': use the study's list."
    )
    bad_click = _post(client, reasons_url, {"token": first, "reasons": [], "click": [1.5, 0.2]})
    assert bad_click.status_code == 400 and "each from 0 to 1" in bad_click.json()["detail"]
    saved = _post(
        client,
        reasons_url,
        {"token": first, "reasons": ["nuclei", "colour", "nuclei"], "click": [0.25, 0.75]},
    )
    assert saved.json() == {"reasons": ["nuclei", "colour"], "click": [0.25, 0.75]}
    _post(client, answer_url, {"token": second, "label": "real"})
    refused = _post(client, reasons_url, {"token": second, "reasons": ["other"]})
    assert refused.status_code == 409 and "'synthetic' only" in refused.json()["detail"]
    other_client = _csrf_client(expert)
    no_asking = _post(
        other_client, reverse("turing:api_reasons", args=[study.pk]), {"token": "x", "reasons": []}
    )
    assert no_asking.status_code == 404  # an item never shown
    text = b"".join(
        manager_client.get(reverse("evaluation:study_export", args=[asking.pk, "answers"])).streaming_content
    ).decode()
    rows = {r["item_token"]: r for r in csv.DictReader(io.StringIO(text))}
    assert (rows[first]["reasons"], rows[first]["click_x"], rows[first]["click_y"]) == (
        "nuclei; colour",
        "0.250",
        "0.750",
    )
    assert rows[second]["reasons"] == "" and rows[second]["click_x"] == ""
    report = manager_client.get(reverse("evaluation:study_report", args=[asking.pk])).content.decode()
    assert "Why synthetic?" in report and 'alt="Heat map of where readers clicked' in report
    truth = asking.items.get(token=first).truth
    from evaluation import selectors

    table = {r["reason"]: r for r in selectors.reason_rows(study=asking)}
    column = "on_synthetic" if truth == "synthetic" else "on_real"
    assert table["nuclei"][column] == 1 and table["other"][column] == 0
    assert Answer.objects.get(item__token=first).reasons == ["nuclei", "colour"]


def test_reasons_changed_are_recorded_and_none_are_taken_after_the_reading_ends_or_the_study_closes(
    asking: Study, expert: Any
) -> None:
    client = _csrf_client(expert)
    answer_url = reverse("turing:api_answer", args=[asking.pk])
    reasons_url = reverse("turing:api_reasons", args=[asking.pk])
    token = client.get(reverse("turing:api_next", args=[asking.pk])).json()["item"]["token"]
    tokens = [token]
    for _ in range(4):
        body = _post(client, answer_url, {"token": tokens[-1], "label": "synthetic"}).json()
        if body["next"]["item"] is None:
            break
        tokens.append(body["next"]["item"]["token"])
        if len(tokens) == 2:  # reasons for the first answer, then changed
            assert _post(client, reasons_url, {"token": tokens[0], "reasons": ["nuclei"]}).status_code == 200
            assert _post(client, reasons_url, {"token": tokens[0], "reasons": ["colour"]}).status_code == 200
    changed = asking.events.get(kind=StudyEvent.Kind.REASONS_CHANGED)
    assert changed.before["reasons"] == ["nuclei"] and changed.after["reasons"] == ["colour"]
    assert changed.before["token"] == tokens[0]
    # The last answer finished the reading: its reasons come once, and nothing else changes after.
    assert _post(client, reasons_url, {"token": tokens[-1], "reasons": ["other"]}).status_code == 200
    again = _post(client, reasons_url, {"token": tokens[-1], "reasons": ["nuclei"]})
    assert again.status_code == 409 and "finished this study" in again.json()["detail"]
    earlier = _post(client, reasons_url, {"token": tokens[1], "reasons": ["nuclei"]})
    assert earlier.status_code == 409
    Study.objects.filter(pk=asking.pk).update(status=Study.Status.CLOSED)
    closed = _post(client, reasons_url, {"token": tokens[-1], "reasons": ["nuclei"]})
    assert closed.status_code == 409 and "closed" in closed.json()["detail"]
    assert Answer.objects.get(item__token=tokens[-1], assignment__reader=expert).reasons == ["other"]
