from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

MANAGER_PAGES = [
    "/admin/",
    "/admin/login/",
    "/admin/gan/dataset/",
    "/manage/",
    "/manage/gan/",
    "/manage/gan/import/",
    "/manage/evaluation/",
]


@pytest.mark.parametrize("url", MANAGER_PAGES)
def test_expert_gets_403_on_manager_pages(expert_client: Client, url: str) -> None:
    assert expert_client.get(url).status_code == 403


@pytest.mark.parametrize("url", [u for u in MANAGER_PAGES if u != "/admin/login/"])
def test_study_manager_reaches_every_manager_page(manager_client: Client, url: str) -> None:
    assert manager_client.get(url).status_code == 200


@pytest.mark.parametrize("url", ["/manage/", "/manage/gan/", "/manage/evaluation/", "/studies/"])
def test_anonymous_user_is_sent_to_the_login_page(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_home_sends_each_role_to_its_own_page(
    client: Client, expert_client: Client, manager_client: Client
) -> None:
    assert client.get("/")["Location"] == reverse("login")
    assert expert_client.get("/")["Location"] == reverse("turing:my_studies")
    assert manager_client.get("/")["Location"] == reverse("dashboard")


def test_login_logout_and_password_change(client: Client, expert: object) -> None:
    page = client.get(reverse("login"))
    assert page.status_code == 200 and b'autocomplete="current-password"' in page.content
    response = client.post(reverse("login"), {"username": "expert-a", "password": "a-long-test-pass-1"})
    assert response.status_code == 302
    assert client.get(reverse("turing:my_studies")).status_code == 200

    response = client.post(
        reverse("password_change"),
        {
            "old_password": "a-long-test-pass-1",
            "new_password1": "quite-new-secret-9",
            "new_password2": "quite-new-secret-9",
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("password_change_done")

    client.post(reverse("logout"))
    assert client.get(reverse("turing:my_studies")).status_code == 302
    assert client.login(username="expert-a", password="quite-new-secret-9")


def test_wrong_password_shows_an_error(client: Client, expert: object) -> None:
    response = client.post(reverse("login"), {"username": "expert-a", "password": "wrong"})
    assert response.status_code == 200
    assert b"did not match" in response.content


def test_study_managers_are_not_superusers_and_accounts_are_the_administrators(
    manager: Any, administrator: Any, manager_client: Client
) -> None:
    from core.roles import is_administrator, is_study_manager

    assert not manager.is_superuser and is_study_manager(manager) and not is_administrator(manager)
    assert is_study_manager(administrator) and is_administrator(administrator)
    assert manager_client.get("/admin/auth/user/").status_code == 403
    # Studies are built and changed through the builder and the study page, which check and record it:
    # the admin's studies, and its link in the menu, are the administrators'.
    assert manager_client.get("/admin/turing/study/").status_code == 403
    assert ">Admin</a>" not in manager_client.get("/manage/").content.decode()
    administrator_client = Client()
    administrator_client.force_login(administrator)
    assert administrator_client.get("/admin/turing/study/").status_code == 200
    assert ">Admin</a>" in administrator_client.get("/manage/").content.decode()


def test_nobody_edits_answers_or_truth_in_the_admin(
    study: Any, expert: Any, manager: Any, administrator: Any
) -> None:
    from turing.models import Answer, StudyItem
    from turing.services import answer_next, answer_submit

    token = answer_next(assignment=study.assignments.get()).token
    answer_submit(study_id=study.pk, reader=expert, token=token, label="real", confidence=3)
    answer, item = Answer.objects.get(label="real"), StudyItem.objects.get(token=token)
    truth = item.truth
    for user in (manager, administrator):
        client = Client()
        client.force_login(user)
        for url, data in (
            (f"/admin/turing/answer/{answer.pk}/change/", {"label": "synthetic", "confidence": 3}),
            (
                f"/admin/turing/studyitem/{item.pk}/change/",
                {"truth": "real" if truth != "real" else "synthetic"},
            ),
            (f"/admin/turing/answer/{answer.pk}/delete/", {"post": "yes"}),
        ):
            assert client.post(url, data).status_code == 403, (user, url)
    answer.refresh_from_db()
    item.refresh_from_db()
    assert answer.label == "real" and item.truth == truth
