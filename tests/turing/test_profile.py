"""The reader profile: asked before the first patch, stored with the assignment, exported, and the
report's experience table."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from core.services import user_create
from gan.models import Dataset
from tests.turing.fixtures import study_for
from turing.models import Study, StudyEvent
from turing.services import StudyError, answer_next, answer_submit, assignment_profile_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def profiled(real_lym: Dataset, synthetic_lym: Dataset, manager: Any) -> Study:
    readers = [user_create(username=f"reader{k}", role="expert", validate=False)[0] for k in range(3)]
    study = study_for(real_lym, synthetic_lym, readers, name="profiled", items_per_reader=8, ask_profile=True)
    profiles = [
        ("pathologist", 20, True, False),
        ("pathologist", 3, False, True),
        ("resident", 1, False, False),
    ]
    for reader, (role, years, gi, seen) in zip(readers, profiles, strict=True):
        assignment = study.assignments.get(reader=reader)
        assignment_profile_set(
            assignment=assignment, role=role, years=years, gi_subspecialty=gi, seen_synthetic=seen
        )
        while not (upcoming := answer_next(assignment=assignment)).finished:
            truth = study.items.get(token=upcoming.token).truth
            label = truth if role == "pathologist" else "real"  # pathologists right, the resident says real
            answer_submit(study_id=study.pk, reader=reader, token=upcoming.token, label=label, confidence=3)
    return study


def test_the_profile_comes_before_the_first_patch(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    study = study_for(real_lym, synthetic_lym, [expert], name="asks", items_per_reader=4, ask_profile=True)
    client = Client()
    client.force_login(expert)
    read = reverse("turing:study_read", args=[study.pk])
    assert client.get(read)["Location"] == reverse("turing:study_profile", args=[study.pk])
    refused = client.post(reverse("turing:study_profile", args=[study.pk]), {"role": "surgeon", "years": 3})
    assert refused.status_code == 200 and b"not one of the available choices" in refused.content
    done = client.post(
        reverse("turing:study_profile", args=[study.pk]),
        {"role": "resident", "years": 2, "gi_subspecialty": "no", "seen_synthetic": "yes"},
    )
    assert done["Location"] == read and client.get(read).status_code == 200
    assignment = study.assignments.get()
    assert (assignment.profile_role, assignment.profile_years, assignment.profile_seen_synthetic) == (
        "resident",
        2,
        True,
    )
    with pytest.raises(StudyError, match="Years in practice must be from 0 to 70"):
        assignment_profile_set(
            assignment=assignment, role="resident", years=99, gi_subspecialty=False, seen_synthetic=False
        )


def test_profiles_are_in_the_exports_and_the_experience_table(
    profiled: Study, manager_client: Client
) -> None:
    text = b"".join(
        manager_client.get(
            reverse("evaluation:study_export", args=[profiled.pk, "answers"])
        ).streaming_content
    ).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    by_reader = {
        r["reader"]: (
            r["reader_role"],
            r["reader_years"],
            r["reader_gi_subspecialty"],
            r["reader_seen_synthetic"],
        )
        for r in rows
    }
    assert sorted(by_reader.values()) == [
        ("pathologist", "20", "yes", "no"),
        ("pathologist", "3", "no", "yes"),
        ("resident", "1", "no", "no"),
    ]
    from evaluation import selectors

    table = selectors.experience_rows(study=profiled, result=selectors.study_figures(study=profiled))
    role = {r["group"]: r for r in table if r["grouping"] == "role"}
    assert role["Pathologist"]["accuracy"].share == 1.0 and len(role["Pathologist"]["readers"]) == 2
    assert role["Resident"]["accuracy"].share == 0.5 and role["Resident"]["mean_auc"] == 0.5
    years = {r["group"]: r["readers"] for r in table if r["grouping"] == "years in practice"}
    assert set(years) == {"under 5 years", "15 years or more"} and len(years["under 5 years"]) == 2
    page = manager_client.get(reverse("evaluation:study_report", args=[profiled.pk])).content.decode()
    assert "Results by experience" in page and "15 years or more" in page


def test_a_profile_given_again_is_recorded_and_none_is_taken_after_the_first_answer(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    study = study_for(real_lym, synthetic_lym, [expert], name="again", items_per_reader=4, ask_profile=True)
    assignment = study.assignments.get()
    assignment_profile_set(
        assignment=assignment, role="resident", years=2, gi_subspecialty=False, seen_synthetic=False
    )
    assignment_profile_set(
        assignment=assignment, role="pathologist", years=2, gi_subspecialty=False, seen_synthetic=False
    )
    changed = study.events.get(kind=StudyEvent.Kind.PROFILE_CHANGED)
    assert changed.before["profile_role"] == "resident" and changed.after["profile_role"] == "pathologist"
    token = answer_next(assignment=assignment).token
    answer_submit(study_id=study.pk, reader=expert, token=token, label="real", confidence=3)
    with pytest.raises(StudyError, match="first answer has been given"):
        assignment_profile_set(
            assignment=assignment, role="resident", years=30, gi_subspecialty=True, seen_synthetic=True
        )
    client = Client()
    client.force_login(expert)
    page = client.post(
        reverse("turing:study_profile", args=[study.pk]),
        {"role": "resident", "years": 30, "gi_subspecialty": "yes", "seen_synthetic": "yes"},
        follow=True,
    )
    assert page.status_code == 200 and b"first answer has been given" in page.content
    assignment.refresh_from_db()
    assert (assignment.profile_role, assignment.profile_years) == ("pathologist", 2)


def test_a_reader_confirms_the_profile_given_in_another_study_instead_of_retyping_it(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    first = study_for(real_lym, synthetic_lym, [expert], name="first study", ask_profile=True)
    second = study_for(real_lym, synthetic_lym, [expert], name="second study", ask_profile=True)
    client = Client()
    client.force_login(expert)
    blank = client.get(reverse("turing:study_profile", args=[first.pk])).content.decode()
    assert "checked" not in blank and "Filled in with your answers" not in blank
    client.post(
        reverse("turing:study_profile", args=[first.pk]),
        {"role": "resident", "years": "4", "gi_subspecialty": "yes", "seen_synthetic": "no"},
    )
    page = client.get(reverse("turing:study_profile", args=[second.pk])).content.decode()
    assert "Filled in with your answers for “first study”" in page and "Confirm and continue" in page
    checked = set(re.findall(r'<input type="radio" name="(\w+)" value="(\w+)"[^>]*checked', page))
    assert checked == {("role", "resident"), ("gi_subspecialty", "yes"), ("seen_synthetic", "no")}
    assert re.search(r'name="years" value="4"', page)
    # Confirming stores the same answers on this study's assignment; the first study's stay as they were.
    client.post(
        reverse("turing:study_profile", args=[second.pk]),
        {"role": "resident", "years": "5", "gi_subspecialty": "yes", "seen_synthetic": "yes"},
    )
    a, b = (s.assignments.get(reader=expert) for s in (first, second))
    assert (a.profile_role, a.profile_years, a.profile_gi, a.profile_seen_synthetic) == (
        "resident",
        4,
        True,
        False,
    )
    assert (b.profile_role, b.profile_years, b.profile_gi, b.profile_seen_synthetic) == (
        "resident",
        5,
        True,
        True,
    )
