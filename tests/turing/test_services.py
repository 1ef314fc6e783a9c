from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from gan.models import Dataset
from tests.turing.fixtures import create_study, study_for
from tests.turing.test_api import _csrf_client
from turing import services
from turing.models import Answer, Assignment, Study, StudyItem

pytestmark = pytest.mark.django_db


def test_study_draws_the_mix_and_a_per_reader_order(study: Study, other_expert: Any) -> None:
    assert (
        study.items.filter(truth="real").count() == 5 and study.items.filter(truth="synthetic").count() == 5
    )
    second = services.study_invite(study=study, reader=other_expert)
    first = Assignment.objects.get(study=study, reader__username="expert-a")
    assert sorted(first.order) == sorted(second.order) == sorted(study.items.values_list("token", flat=True))
    assert first.order != second.order  # each reader has their own order
    assert services.assignment_order_audit(assignment=first) and services.assignment_order_audit(
        assignment=second
    )
    assert services.study_invite(study=study, reader=other_expert).pk == second.pk  # idempotent


def test_tampered_order_fails_the_audit(study: Study) -> None:
    assignment = study.assignments.get()
    assignment.order = list(reversed(assignment.order))
    assert not services.assignment_order_audit(assignment=assignment)


def test_ratio_and_separate_draws_per_reader(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any, other_expert: Any
) -> None:
    study = study_for(
        real_lym,
        synthetic_lym,
        [expert, other_expert],
        name="3:1",
        items_per_reader=8,
        real_parts=3,
        synthetic_parts=1,
        same_items_for_all=False,
        ask_profile=True,
    )
    for assignment in study.assignments.all():
        truths = list(StudyItem.objects.filter(token__in=assignment.order).values_list("truth", flat=True))
        assert truths.count("real") == 6 and truths.count("synthetic") == 2
    orders = [set(a.order) for a in study.assignments.all()]
    assert not orders[0] & orders[1]  # separate item rows (and tokens) per reader


def test_study_larger_than_its_pools_is_refused_with_the_counts(
    real_lym: Dataset, synthetic_lym: Dataset
) -> None:
    with pytest.raises(
        services.StudyError,
        match="asks for 15 synthetic LYM items per reader, but the synthetic pool holds 12",
    ):
        create_study(
            name="big", real_datasets=[real_lym], synthetic_datasets=[synthetic_lym], items_per_reader=30
        )
    assert not Study.objects.exists()


def test_only_experts_are_invited(study: Study, manager: Any) -> None:
    with pytest.raises(services.StudyError, match="not an expert"):
        services.study_invite(study=study, reader=manager)


def test_next_records_shown_at_once_and_resumes_at_the_first_unanswered(study: Study) -> None:
    assignment = study.assignments.get()
    first = services.answer_next(assignment=assignment)
    assert first.position == 0 and first.total == 10 and first.preload_token
    shown = Answer.objects.get(assignment=assignment, item__token=first.token).shown_at
    again = services.answer_next(assignment=assignment)
    assert again.token == first.token
    assert Answer.objects.get(assignment=assignment, item__token=first.token).shown_at == shown
    services.answer_submit(
        study_id=assignment.study_id, reader=assignment.reader, token=first.token, label="real", confidence=3
    )
    following = services.answer_next(assignment=assignment)
    assert following.position == 1 and following.token == first.preload_token


def test_a_repeated_submit_stores_nothing_new(study: Study) -> None:
    assignment = study.assignments.get()
    token = services.answer_next(assignment=assignment).token
    first = services.answer_submit(
        study_id=assignment.study_id, reader=assignment.reader, token=token, label="synthetic", confidence=4
    )
    second = services.answer_submit(
        study_id=assignment.study_id, reader=assignment.reader, token=token, label="synthetic", confidence=4
    )
    assert first.created and not second.created
    assert second.answer.answered_at == first.answer.answered_at
    assert Answer.objects.filter(label__isnull=False).count() == 1


def test_changing_an_answer_needs_the_study_to_allow_it(study: Study) -> None:
    assignment = study.assignments.get()
    token = services.answer_next(assignment=assignment).token
    services.answer_submit(study_id=assignment.study_id, reader=assignment.reader, token=token, label="real")
    with pytest.raises(services.AnswerError, match="already answered") as refused:
        services.answer_submit(
            study_id=assignment.study_id, reader=assignment.reader, token=token, label="synthetic"
        )
    assert refused.value.status == 409
    Study.objects.filter(pk=study.pk).update(allow_changes=True)
    assignment = Assignment.objects.select_related("study").get(pk=assignment.pk)
    # Where changes are allowed, a change is an explicit revision of a position (the page's Back):
    # an answer for an answered patch from a page out of date is refused and changes nothing.
    with pytest.raises(
        services.AnswerError, match=r"Patch 1 is already answered \(real\): this page was out"
    ) as stale:
        services.answer_submit(
            study_id=assignment.study_id, reader=assignment.reader, token=token, label="synthetic"
        )
    assert stale.value.status == 409
    with pytest.raises(services.AnswerError, match="names the position"):
        services.answer_submit(
            study_id=assignment.study_id,
            reader=assignment.reader,
            token=token,
            label="synthetic",
            revise=True,
        )
    changed = services.answer_submit(
        study_id=assignment.study_id,
        reader=assignment.reader,
        token=token,
        label="synthetic",
        confidence=None,
        position=0,
        revise=True,
    )
    assert changed.answer.label == "synthetic" and changed.answer.changed_at is not None
    assert changed.changed_from == {"label": "real", "confidence": None}


@pytest.mark.parametrize(
    ("label", "confidence", "message"),
    [
        ("maybe", None, "Unknown label"),
        ("real", 0, "from 1 to 5"),
        ("real", 6, "from 1 to 5"),
        ("real", "5", "from 1 to 5"),
        ("real", True, "from 1 to 5"),
    ],
)
def test_bad_answers_are_refused_and_store_nothing(
    study: Study, label: Any, confidence: Any, message: str
) -> None:
    """The API's serializer checks an answer's shape (the service then checks state only)."""
    assignment = study.assignments.get()
    token = services.answer_next(assignment=assignment).token
    client = _csrf_client(assignment.reader)
    body = {"token": token, "label": label} | ({} if confidence is None else {"confidence": confidence})
    response = client.post(
        reverse("turing:api_answer", args=[study.pk]),
        body,
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert response.status_code == 400 and message in response.json()["detail"]
    assert not Answer.objects.filter(label__isnull=False).exists()


def test_items_not_shown_and_closed_studies_are_refused(study: Study) -> None:
    assignment = study.assignments.get()
    upcoming = services.answer_next(assignment=assignment)
    with pytest.raises(services.AnswerError, match="No such item") as not_shown:
        services.answer_submit(
            study_id=assignment.study_id, reader=assignment.reader, token=upcoming.preload_token, label="real"
        )
    assert not_shown.value.status == 404
    services.study_set_status(study=study, status="closed")
    assignment = Assignment.objects.select_related("study").get(pk=assignment.pk)
    with pytest.raises(services.AnswerError, match="closed") as closed:
        services.answer_submit(
            study_id=assignment.study_id, reader=assignment.reader, token=upcoming.token, label="real"
        )
    assert closed.value.status == 409


def test_last_answer_finishes_the_assignment(study: Study) -> None:
    assignment = study.assignments.get()
    for _ in range(10):
        services.answer_submit(
            study_id=assignment.study_id,
            reader=assignment.reader,
            token=services.answer_next(assignment=assignment).token,
            label="real",
        )
    assignment.refresh_from_db()
    assert assignment.finished_at is not None
    assert services.answer_next(assignment=assignment).finished
    positions = list(
        Answer.objects.filter(assignment=assignment)
        .order_by("position")
        .values_list("item__token", flat=True)
    )
    assert positions == assignment.order
