from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from gan.models import Dataset
from tests.turing.fixtures import study_for
from turing.models import Study
from turing.services import answer_next

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_study(real_lym: Dataset, synthetic_lym: Dataset, other_expert: Any) -> Study:
    return study_for(
        real_lym, synthetic_lym, [other_expert], name="someone else's", items_per_reader=4, ask_profile=True
    )


def test_anonymous_users_go_to_the_login_page(client: Client, study: Study) -> None:
    for url in (reverse("turing:study_read", args=[study.pk]), reverse("turing:my_studies")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.get(reverse("turing:api_next", args=[study.pk])).status_code == 403


def test_an_expert_sees_only_their_own_studies(
    expert_client: Client, study: Study, other_study: Study
) -> None:
    listing = expert_client.get(reverse("turing:my_studies")).content
    assert b"LYM study" in listing and b"someone else" not in listing
    assert expert_client.get(reverse("turing:study_read", args=[study.pk])).status_code == 200
    for name in ("turing:study_read", "turing:study_done", "turing:api_next", "turing:api_progress"):
        assert expert_client.get(reverse(name, args=[other_study.pk])).status_code == 404, name
    assert expert_client.get(reverse("turing:api_next", args=[999_999])).status_code == 404


def test_an_expert_cannot_fetch_another_readers_images(
    expert_client: Client, study: Study, other_study: Study
) -> None:
    theirs = answer_next(assignment=other_study.assignments.get())
    assert expert_client.get(reverse("turing:item_image", args=[theirs.token])).status_code == 404
    mine = answer_next(assignment=study.assignments.get())
    assert expert_client.get(reverse("turing:item_image", args=[mine.token])).status_code == 200
    assert expert_client.get(reverse("turing:item_image", args=["made-up-token"])).status_code == 404


def test_an_expert_cannot_answer_in_another_readers_study(expert_client: Client, other_study: Study) -> None:
    theirs = answer_next(assignment=other_study.assignments.get())
    response = expert_client.post(
        reverse("turing:api_answer", args=[other_study.pk]),
        {"token": theirs.token, "label": "real"},
        content_type="application/json",
    )
    assert response.status_code == 404


def test_study_management_is_for_study_managers(
    expert_client: Client, manager_client: Client, study: Study
) -> None:
    for url in (
        reverse("turing:study_list"),
        reverse("turing:study_new"),
        reverse("turing:study_detail", args=[study.pk]),
    ):
        assert expert_client.get(url).status_code == 403
        assert manager_client.get(url).status_code == 200
