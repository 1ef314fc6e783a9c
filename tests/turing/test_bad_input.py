"""Bad input of every kind the audit sent gets a 4xx that names the problem, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from core.services import user_create
from gan.models import Dataset
from tests.turing.fixtures import builder_form
from tests.turing.test_api import _csrf_client
from turing.models import Invitation, Study

pytestmark = pytest.mark.django_db

HUGE = str(2**63)


def _json(client: Client, url: str, body: str) -> Any:
    return client.post(
        url, body, content_type="application/json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
    )


@pytest.mark.parametrize("route", ["turing:api_answer", "turing:api_reasons", "turing:api_practice_answer"])
def test_deeply_nested_json_is_a_400_that_says_so(route: str, study: Study, expert: Any) -> None:
    client = _csrf_client(expert)
    response = _json(client, reverse(route, args=[study.pk]), "[" * 100_000 + "]" * 100_000)
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]


def test_ids_beyond_the_databases_range_are_refused_by_name(
    manager_client: Client, study: Study, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    invite = manager_client.post(
        reverse("turing:study_invite", args=[study.pk]), {"readers": [HUGE]}, follow=True
    )
    assert invite.status_code == 400 and b"not one of the available choices" in invite.content
    for field in ("real_datasets", "readers"):
        data = builder_form(real_lym, synthetic_lym, expert) | {field: [HUGE], "preview": "1"}
        page = manager_client.post(reverse("turing:study_new"), data)
        assert page.status_code == 200 and b"not one of the available choices" in page.content, field
    seed = manager_client.post(
        reverse("turing:study_new"),
        builder_form(real_lym, synthetic_lym, expert) | {"seed": HUGE, "create": "1"},
    )
    assert seed.status_code == 200 and b"less than or equal to" in seed.content
    assert manager_client.get(reverse("turing:study_new") + "?copy=²").status_code == 200


def test_a_name_with_control_characters_is_refused(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    data = builder_form(real_lym, synthetic_lym, expert) | {
        "name": "Round\r\nBcc: x@example.org",
        "create": "1",
    }
    page = manager_client.post(reverse("turing:study_new"), data)
    assert page.status_code == 200 and b"control characters" in page.content
    assert not Study.objects.exists()


def test_inviting_an_address_that_is_another_users_name_says_why(
    manager_client: Client, study: Study
) -> None:
    user_create(username="dr.b@example.org", role="expert", email="other@example.org", validate=False)
    page = manager_client.post(
        reverse("turing:study_invite", args=[study.pk]),
        {"emails": "dr.b@example.org, new@example.org"},
        follow=True,
    )
    assert page.status_code == 400 and b"dr.b@example.org: a user of that name" in page.content
    assert list(Invitation.objects.values_list("email", flat=True)) == ["new@example.org"]
