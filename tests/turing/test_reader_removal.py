"""Removing a reader: recorded with its reason, final, their answers kept in the exports and left out of
every statistic, and their session answers nothing more."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from core.services import user_create
from evaluation.selectors import study_figures
from gan.models import Dataset
from tests.turing.fixtures import study_for
from tests.turing.test_api import _csrf_client
from turing.models import Answer, Study, StudyEvent
from turing.services import answer_next, answer_submit

pytestmark = pytest.mark.django_db


def _answer_all(study: Study, reader: Any) -> None:
    assignment = study.assignments.get(reader=reader)
    while not (upcoming := answer_next(assignment=assignment)).finished:
        truth = study.items.get(token=upcoming.token).truth
        answer_submit(study_id=study.pk, reader=reader, token=upcoming.token, label=truth, confidence=3)


def test_a_removed_reader_answers_nothing_more_and_is_left_out_of_the_analysis(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    others = [user_create(username=f"keeps-{k}", role="expert", validate=False)[0] for k in range(2)]
    study = study_for(real_lym, synthetic_lym, [expert, *others], items_per_reader=6, planned_readers=3)
    for reader in others:
        _answer_all(study, reader)
    reader_client = _csrf_client(expert)
    first = reader_client.get(reverse("turing:api_next", args=[study.pk])).json()["item"]["token"]
    answer_submit(study_id=study.pk, reader=expert, token=first, label="real", confidence=2)
    assignment = study.assignments.get(reader=expert)
    url = reverse("turing:reader_remove", args=[study.pk, assignment.pk])
    no_reason = manager_client.post(url, {"reason": "  "}, follow=True)
    assert b"Say why the reader is removed" in no_reason.content
    done = manager_client.post(url, {"reason": "read the study with a colleague"}, follow=True)
    assert b"The reader is removed" in done.content and b"removed " in done.content
    event = study.events.get(kind=StudyEvent.Kind.READER_REMOVED)
    assert event.after["reason"] == "read the study with a colleague" and event.after["answers"] == 1
    # Their session answers nothing more, and cannot see the study.
    upcoming = answer_next(assignment=assignment)
    refused = reader_client.post(
        reverse("turing:api_answer", args=[study.pk]),
        {"token": upcoming.token, "label": "synthetic"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=reader_client.cookies["csrftoken"].value,
    )
    assert refused.status_code == 404  # as for any study that is not theirs
    assert reader_client.get(reverse("turing:study_read", args=[study.pk])).status_code == 404
    assert reader_client.get(reverse("turing:api_next", args=[study.pk])).status_code == 404
    # Kept in the record and the exports; out of every figure.
    assert Answer.objects.filter(assignment=assignment, label__isnull=False).count() == 1
    text = b"".join(
        manager_client.get(reverse("evaluation:study_export", args=[study.pk, "answers"])).streaming_content
    ).decode()
    assert first in text
    result = study_figures(study=Study.objects.get(pk=study.pk))
    assert result.n_answers == 12 and sorted(result.readers) == ["R2", "R3"]
    assert any(note.startswith("R1 was removed on") and "colleague" in note for note in result.notes)
    again = manager_client.post(url, {"reason": "twice"}, follow=True)
    assert b"removed already" in again.content
