from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from turing.models import Answer, RecordEntry, Study

pytestmark = pytest.mark.django_db


def _csrf_client(user: Any) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(reverse("turing:my_studies"))  # sets the CSRF cookie
    return client


def _post(client: Client, study: Study, body: Any, raw: str | None = None) -> Any:
    return client.post(
        reverse("turing:api_answer", args=[study.pk]),
        data=raw if raw is not None else json.dumps(body),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )


def test_next_answer_and_progress(study: Study, expert: Any) -> None:
    client = _csrf_client(expert)
    upcoming = client.get(reverse("turing:api_next", args=[study.pk])).json()
    assert upcoming["position"] == 0 and upcoming["total"] == 10 and not upcoming["finished"]
    assert upcoming["item"]["image_url"] == reverse("turing:item_image", args=[upcoming["item"]["token"]])
    response = _post(client, study, {"token": upcoming["item"]["token"], "label": "real", "confidence": 2})
    assert response.status_code == 201
    body = response.json()
    assert body["saved"] and not body["repeated"] and body["next"]["position"] == 1
    assert body["next"]["item"]["token"] == upcoming["preload"]["token"]
    assert client.get(reverse("turing:api_progress", args=[study.pk])).json() == {
        "answered": 1,
        "total": 10,
        "finished": False,
        "open": True,
    }


def test_a_first_answer_takes_one_statement_and_its_record_entry_and_shows_the_next_item(
    study: Study, expert: Any
) -> None:
    """The hot path of the expert page: no look-up before the update, no count after it; then the
    answer's record entry in the same transaction (the reader's chain locked on PostgreSQL, the chain's
    end read, the entry added from what the answer's statement returned), and the next item shown. (A
    reader's very first answer also checks, once, whether it freezes the study.)"""
    client = _csrf_client(expert)
    first = client.get(reverse("turing:api_next", args=[study.pk])).json()["item"]["token"]
    token = _post(client, study, {"token": first, "label": "synthetic", "confidence": 2}).json()["next"][
        "item"
    ]["token"]
    with CaptureQueriesContext(connection) as queries:
        response = _post(client, study, {"token": token, "label": "real", "confidence": 4})
    assert response.status_code == 201
    on_turing = [q["sql"].split()[0] for q in queries.captured_queries if "turing_" in q["sql"]]
    lock = ["SELECT"] if connection.features.has_select_for_update else []  # SQLite: writers serialise
    assert on_turing == ["UPDATE", *lock, "SELECT", "INSERT", "INSERT"]
    assignment = Answer.objects.get(item__token=token).assignment_id
    assert RecordEntry.objects.filter(chain=f"reader {assignment}", kind="answer").count() == 2
    answer = Answer.objects.get(item__token=token)
    assert (answer.label, answer.confidence, answer.position) == ("real", 4, 1)
    assert Answer.objects.filter(position=2, label__isnull=True).count() == 1


def test_double_submit_returns_the_stored_answer(study: Study, expert: Any) -> None:
    client = _csrf_client(expert)
    token = client.get(reverse("turing:api_next", args=[study.pk])).json()["item"]["token"]
    first = _post(client, study, {"token": token, "label": "synthetic", "confidence": 5})
    second = _post(client, study, {"token": token, "label": "synthetic", "confidence": 5})
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["repeated"] and second.json()["answered_at"] == first.json()["answered_at"]
    assert Answer.objects.filter(label__isnull=False).count() == 1


@pytest.mark.parametrize(
    ("body", "raw", "status", "message"),
    [
        ({"label": "real"}, None, 400, "token is required"),
        ({"token": "TOKEN", "label": "perhaps"}, None, 400, "Unknown label"),
        ({"token": "TOKEN", "label": "real", "confidence": 9}, None, 400, "from 1 to 5"),
        ({"token": "not-a-token", "label": "real"}, None, 404, "No such item"),
        (None, "{not json", 400, "JSON parse error"),
        (None, "[1, 2]", 400, "Send a JSON object"),
    ],
)
def test_bad_answers_get_a_clear_4xx_and_store_nothing(
    study: Study, expert: Any, body: Any, raw: str | None, status: int, message: str
) -> None:
    client = _csrf_client(expert)
    token = client.get(reverse("turing:api_next", args=[study.pk])).json()["item"]["token"]
    if body is not None and body.get("token") == "TOKEN":
        body["token"] = token
    response = _post(client, study, body, raw)
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert not Answer.objects.filter(label__isnull=False).exists()


def test_answer_after_the_study_closed_is_refused(study: Study, expert: Any) -> None:
    client = _csrf_client(expert)
    token = client.get(reverse("turing:api_next", args=[study.pk])).json()["item"]["token"]
    Study.objects.filter(pk=study.pk).update(status="closed")
    response = _post(client, study, {"token": token, "label": "real"})
    assert response.status_code == 409 and "closed" in response.json()["detail"]


def test_post_without_csrf_token_is_refused(study: Study, expert: Any) -> None:
    client = _csrf_client(expert)
    token = client.get(reverse("turing:api_next", args=[study.pk])).json()["item"]["token"]
    response = client.post(
        reverse("turing:api_answer", args=[study.pk]),
        data=json.dumps({"token": token, "label": "real"}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not Answer.objects.filter(label__isnull=False).exists()


def test_openapi_schema_is_served(client: Client) -> None:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "/api/studies/{study_id}/answers" in text and "/api/studies/{study_id}/next" in text


@pytest.mark.parametrize(
    ("confidence", "message"),
    [("3", "got '3'"), (3.0, "got 3.0"), (True, "got True"), (0, "got 0")],
)
def test_the_api_validates_answers_through_its_serializer(
    study: Study, expert: Any, confidence: Any, message: str
) -> None:
    """A string, a float or a boolean is not a confidence, even when Python would take it for one."""
    client = _csrf_client(expert)
    token = client.get(reverse("turing:api_next", args=[study.pk])).json()["item"]["token"]
    response = _post(client, study, {"token": token, "label": "real", "confidence": confidence})
    assert response.status_code == 400 and message in response.json()["detail"]
    assert not Answer.objects.filter(label__isnull=False).exists()


def test_a_bad_answer_to_someone_elses_study_is_a_404(study: Study, other_expert: Any) -> None:
    response = _post(_csrf_client(other_expert), study, {"token": "x", "label": "perhaps"})
    assert response.status_code == 404


def test_an_earlier_answer_is_shown_back_only_where_changes_are_allowed(
    study: Study, expert: Any, other_expert: Any
) -> None:
    client = _csrf_client(expert)
    first = client.get(reverse("turing:api_next", args=[study.pk])).json()["item"]["token"]
    _post(client, study, {"token": first, "label": "synthetic", "confidence": 2})
    url = reverse("turing:api_answered", args=[study.pk, 0])
    refused = client.get(url)
    assert refused.status_code == 409 and refused.json()["detail"] == "This study does not allow changes."
    Study.objects.filter(pk=study.pk).update(allow_changes=True)
    shown = client.get(url).json()
    assert shown["item"]["token"] == first and (shown["label"], shown["confidence"]) == ("synthetic", 2)
    assert client.get(reverse("turing:api_answered", args=[study.pk, 1])).status_code == 404  # not answered
    outsider = _csrf_client(other_expert)
    assert outsider.get(url).status_code == 404  # someone else's study does not exist for them
