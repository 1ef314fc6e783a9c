"""Invitations by e-mail: a link that signs an expert in once, expires, can be withdrawn and sent again."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.roles import is_expert
from turing.models import Invitation, Study, StudyEvent

pytestmark = pytest.mark.django_db


def _invite(client: Client, study: Study, emails: str, status: int = 200) -> Any:
    with_mail = client.post(reverse("turing:study_invite", args=[study.pk]), {"emails": emails}, follow=True)
    assert with_mail.status_code == status
    return with_mail


def _link(message: Any) -> str:
    match = re.search(r"http://testserver(/invitations/\S+)", message.body)
    assert match, message.body
    return match.group(1)


def test_inviting_by_e_mail_makes_accounts_sends_links_and_says_what_it_did(
    manager_client: Client, study: Study, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        page = _invite(
            manager_client,
            study,
            "Dr.A@example.org, dr.b@example.org; not-an-address\ndr.a@example.org",
            status=400,  # an address was refused: it stays in the box, its reason beside it
        )
    text = page.content.decode()
    assert "Invitation sent to dr.a@example.org, dr.b@example.org." in text
    assert 'class="errorlist' in text and "Not invited: not-an-address: not an e-mail address." in text
    assert re.search(r"<textarea[^>]*>\s*not-an-address\s*</textarea>", text)
    assert sorted(m.to[0] for m in mail.outbox) == ["dr.a@example.org", "dr.b@example.org"]
    assert study.name in mail.outbox[0].subject and "/invitations/" in mail.outbox[0].body
    for address in ("dr.a@example.org", "dr.b@example.org"):
        user = get_user_model().objects.get(email=address)
        assert is_expert(user) and not user.has_usable_password()
        assert study.assignments.filter(reader=user).exists()
    again = _invite(manager_client, study, "dr.b@example.org")
    assert (
        "Already invited (use Send again if the link was lost): dr.b@example.org." in again.content.decode()
    )
    assert len(mail.outbox) == 2
    assert Invitation.objects.filter(study=study).count() == 2
    assert (
        "dr.a@example.org"
        in manager_client.get(reverse("turing:study_detail", args=[study.pk])).content.decode()
    )


def test_a_link_signs_in_once_then_no_more(
    manager_client: Client, study: Study, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _invite(manager_client, study, "reader@example.org")
    link = _link(mail.outbox[0])
    reader = Client()
    assert reader.get(link).status_code == 200  # opening the link (a mail scanner too) uses nothing
    assert Invitation.objects.get().used_at is None
    response = reader.post(link)
    study_url = reverse("turing:study_read", args=[study.pk])
    assert (
        response.status_code == 302
        and response["Location"] == f"{reverse('turing:password_set')}?next={study_url}"
    )
    assert reader.get(study_url).status_code == 200  # signed in
    chosen = reader.post(
        response["Location"], {"new_password1": "a-long-new-pass-9", "new_password2": "a-long-new-pass-9"}
    )
    assert chosen["Location"] == study_url
    assert get_user_model().objects.get(email="reader@example.org").check_password("a-long-new-pass-9")
    second = Client().post(link)
    assert second.status_code == 410 and b"has been used already" in second.content


def test_an_expired_or_withdrawn_link_fails_and_a_new_one_replaces_the_old(
    manager_client: Client, study: Study, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _invite(manager_client, study, "late@example.org, gone@example.org")
    links = {m.to[0]: _link(m) for m in mail.outbox}
    Invitation.objects.filter(email="late@example.org").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    expired = Client().post(links["late@example.org"])
    assert expired.status_code == 410 and b"has expired" in expired.content
    gone = Invitation.objects.get(email="gone@example.org")
    manager_client.post(reverse("turing:invitation_manage", args=[gone.pk, "revoke"]))
    withdrawn = Client().post(links["gone@example.org"])
    assert withdrawn.status_code == 410 and b"was withdrawn" in withdrawn.content
    late = Invitation.objects.get(email="late@example.org")
    manager_client.post(reverse("turing:invitation_manage", args=[late.pk, "resend"]))
    fresh = _link(mail.outbox[-1])
    assert fresh != links["late@example.org"]
    assert Client().post(links["late@example.org"]).status_code == 410  # the old link is replaced
    assert Client().post(fresh).status_code == 302
    assert Invitation.objects.get(email="late@example.org").times_sent == 2


def test_a_closed_study_invites_nobody(manager_client: Client, study: Study) -> None:
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    page = _invite(manager_client, study, "someone@example.org")
    assert "This study is closed" in page.content.decode() and not mail.outbox
    assert not Invitation.objects.exists()


def test_changing_a_password_needs_the_current_one_after_the_first_is_chosen(
    manager_client: Client, study: Study, django_capture_on_commit_callbacks: Any
) -> None:
    """A stolen session must not become a permanent takeover: only the password chosen right after an
    invitation link is set without the current one, and only once."""
    with django_capture_on_commit_callbacks(execute=True):
        _invite(manager_client, study, "owner@example.org")
    reader = Client()
    reader.post(_link(mail.outbox[0]))
    url = reverse("turing:password_set")
    first = reader.post(url, {"new_password1": "a-long-new-pass-9", "new_password2": "a-long-new-pass-9"})
    assert first.status_code == 302
    taken = reader.post(url, {"new_password1": "an-attackers-pass-1", "new_password2": "an-attackers-pass-1"})
    assert taken.status_code == 200 and b"old_password" in taken.content and b"required" in taken.content
    owner = get_user_model().objects.get(email="owner@example.org")
    assert owner.check_password("a-long-new-pass-9")
    wrong = {
        "old_password": "guess",
        "new_password1": "an-attackers-pass-1",
        "new_password2": "an-attackers-pass-1",
    }
    assert b"incorrectly" in reader.post(url, wrong).content
    right = wrong | {"old_password": "a-long-new-pass-9"}
    assert reader.post(url, right).status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("an-attackers-pass-1")


def test_withdrawing_an_unused_invitation_removes_the_enrolment_and_a_withdrawn_link_stays_dead(
    manager_client: Client, study: Study, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _invite(manager_client, study, "never@example.org")
    invitation = Invitation.objects.get()
    assert study.assignments.filter(reader=invitation.reader).exists()
    page = manager_client.post(
        reverse("turing:invitation_manage", args=[invitation.pk, "revoke"]), follow=True
    )
    assert b"no longer a reader of this study" in page.content
    assert not study.assignments.filter(reader=invitation.reader).exists()
    removed = study.events.get(kind=StudyEvent.Kind.READER_REMOVED)
    assert removed.before["reader"] == invitation.reader_id
    with django_capture_on_commit_callbacks(execute=True):
        again = manager_client.post(
            reverse("turing:invitation_manage", args=[invitation.pk, "resend"]), follow=True
        )
    assert b"is not sent again" in again.content and len(mail.outbox) == 1
    assert Invitation.objects.get().revoked_at is not None
    assert Client().post(_link(mail.outbox[0])).status_code == 410


def test_an_unknown_invitation_action_is_refused_and_changes_nothing(
    manager_client: Client, study: Study
) -> None:
    with_mail = _invite(manager_client, study, "kept@example.org")
    assert with_mail.status_code == 200
    invitation = Invitation.objects.get()
    refused = manager_client.post(reverse("turing:invitation_manage", args=[invitation.pk, "delete"]))
    assert refused.status_code == 400 and b"Unknown invitation action 'delete'" in refused.content
    invitation.refresh_from_db()
    assert invitation.revoked_at is None and study.assignments.filter(reader=invitation.reader).exists()


def test_experts_chosen_from_the_list_are_e_mailed_their_link_too(
    manager_client: Client, study: Study, django_capture_on_commit_callbacks: Any
) -> None:
    from core.services import user_create

    with_address = user_create(username="dr-c", role="expert", email="dr.c@example.org", validate=False)[0]
    without = user_create(username="dr-d", role="expert", validate=False)[0]
    with django_capture_on_commit_callbacks(execute=True):
        page = manager_client.post(
            reverse("turing:study_invite", args=[study.pk]),
            {"readers": [with_address.pk, without.pk]},
            follow=True,
        )
    text = page.content.decode()
    assert [m.to for m in mail.outbox] == [["dr.c@example.org"]] and "/invitations/" in mail.outbox[0].body
    assert "Invitation sent to dr.c@example.org." in text
    assert "Invited dr-d: no e-mail was sent, since the account has no address (tell them)." in text
    assert set(study.assignments.values_list("reader__username", flat=True)) >= {"dr-c", "dr-d"}


def test_readers_who_have_not_finished_are_reminded_with_a_new_link_and_it_is_recorded(
    manager_client: Client, study: Study, django_capture_on_commit_callbacks: Any
) -> None:
    from turing.models import Assignment

    with django_capture_on_commit_callbacks(execute=True):
        _invite(manager_client, study, "dr.a@example.org, dr.b@example.org")
    first_links = {m.to[0]: _link(m) for m in mail.outbox}
    done = Assignment.objects.get(study=study, reader__email="dr.b@example.org")
    Assignment.objects.filter(pk=done.pk).update(finished_at=timezone.now())
    page = manager_client.get(reverse("turing:study_detail", args=[study.pk])).content.decode()
    assert page.count(">Remind</button>") == 1  # dr.a only: dr.b has finished
    mail.outbox.clear()
    page = manager_client.post(reverse("turing:study_remind", args=[study.pk]), follow=True).content.decode()
    assert "Reminded dr.a@example.org" in page
    assert [m.to[0] for m in mail.outbox] == ["dr.a@example.org"]
    assert mail.outbox[0].subject.startswith("Reminder: ")
    assert _link(mail.outbox[0]) != first_links["dr.a@example.org"]
    event = study.events.get(kind=StudyEvent.Kind.REMINDED)
    assert event.after["of"] == 10 and event.after["answered"] == 0
    invitation = Invitation.objects.get(study=study, email="dr.b@example.org")
    refused = manager_client.post(
        reverse("turing:invitation_manage", args=[invitation.pk, "remind"]), follow=True
    ).content.decode()
    assert "has finished: a reminder is not needed" in refused and len(mail.outbox) == 1


def test_the_list_of_existing_experts_says_why_it_is_empty(manager_client: Client, study: Study) -> None:
    """Every expert already reads the study: the list box would be empty, so the page says so instead."""
    assert study.assignments.exists()
    before = manager_client.get(reverse("turing:study_detail", args=[study.pk])).content.decode()
    assert "No other expert has an account yet: invite them by address above." in before
    get_user_model().objects.create_user("expert-new", "new@example.org", "a-long-test-pass-1").groups.add(
        *get_user_model().objects.get(username=study.assignments.first().reader.username).groups.all()
    )
    after = manager_client.get(reverse("turing:study_detail", args=[study.pk])).content.decode()
    assert "No other expert" not in after and "expert-new" in after
