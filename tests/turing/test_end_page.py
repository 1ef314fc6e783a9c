"""The end page: where to come back, and a reader's own result once the study is closed, if its manager
turned that on."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from gan.models import Dataset
from tests.turing.fixtures import study_for
from turing.models import Study
from turing.services import StudyError, answer_next, answer_submit, study_set_status

pytestmark = pytest.mark.django_db


def test_a_readers_own_result_shows_only_after_the_close(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any, other_expert: Any, manager: Any
) -> None:
    study = study_for(
        real_lym, synthetic_lym, [expert, other_expert], items_per_reader=6, show_personal_result=True
    )
    for reader, right in ((expert, True), (other_expert, False)):
        assignment = study.assignments.get(reader=reader)
        while not (upcoming := answer_next(assignment=assignment)).finished:
            truth = study.items.get(token=upcoming.token).truth
            label = truth if right else "real"
            answer_submit(study_id=study.pk, reader=reader, token=upcoming.token, label=label, confidence=4)
    client = Client()
    client.force_login(expert)
    done = reverse("turing:study_done", args=[study.pk])
    open_page = client.get(done).content.decode()
    assert "Your result" not in open_page and "this page will show your own result" in open_page
    study_set_status(study=study, status="closed", actor=manager)
    page = client.get(done).content.decode()
    assert "You labelled 100% of the patches correctly" in page
    assert "the readers' median was 75%" in page and "from 50% to 100%, 2 readers" in page
    assert "Your ROC AUC (0.5 = chance, 1 = perfect) was 1.00; the readers' median 0.75" in page
    study.show_personal_result = False
    study.save(update_fields=["show_personal_result"])
    assert "Your result" not in client.get(done).content.decode()


def test_a_personal_result_never_goes_with_answers_that_may_be_changed(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any, manager: Any
) -> None:
    """A manager's reopen would let a reader who saw their result mend the answers it showed wrong."""
    with pytest.raises(StudyError, match="cannot go with answers that may be changed"):
        study_for(real_lym, synthetic_lym, [expert], show_personal_result=True, allow_changes=True)
    study = study_for(real_lym, synthetic_lym, [expert], items_per_reader=4, show_personal_result=True)
    Study.objects.filter(pk=study.pk).update(allow_changes=True)  # as an older study might have it
    assignment = study.assignments.get()
    while not (upcoming := answer_next(assignment=assignment)).finished:
        answer_submit(study_id=study.pk, reader=expert, token=upcoming.token, label="real", confidence=4)
    study_set_status(study=Study.objects.get(pk=study.pk), status="closed", actor=manager)
    client = Client()
    client.force_login(expert)
    assert "Your result" not in client.get(reverse("turing:study_done", args=[study.pk])).content.decode()
