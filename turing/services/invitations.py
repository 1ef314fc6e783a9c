"""Invitations by e-mail: links that sign an expert in once and open a study."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from core.roles import UserLike, is_expert, signed_in
from core.services import user_create
from turing.models import (
    Answer,
    Assignment,
    Invitation,
    Study,
    StudyEvent,
)
from turing.services.errors import InvitationError, StudyError
from turing.services.record import study_event_record
from turing.services.studies import study_invite


@dataclass
class InvitationReport:
    """What an invitation request did, one line per address: the page says it once, in full."""

    sent: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "address: why"

    def lines(self, *, refused: bool = True) -> list[str]:
        """What happened, one line per kind; `refused=False` leaves the refusals to the form."""
        out = []
        if self.sent:
            out.append(f"Invitation sent to {', '.join(self.sent)}.")
        if self.already:
            out.append(f"Already invited (use Send again if the link was lost): {', '.join(self.already)}.")
        if refused:
            out += [f"Not invited: {line}." for line in self.refused]
        return out

    @property
    def refused_addresses(self) -> list[str]:
        return [line.split(": ", 1)[0] for line in self.refused]


def _invitation_issue(invitation: Invitation) -> str:
    """Give an invitation a new link secret (only its hash is kept), sent now and valid for
    INVITATION_VALID_DAYS; returns the secret for the mail. The caller saves the invitation."""
    secret = secrets.token_urlsafe(32)
    invitation.secret_hash = hashlib.sha256(secret.encode()).hexdigest()
    invitation.sent_at = timezone.now()
    invitation.expires_at = invitation.sent_at + timedelta(days=settings.INVITATION_VALID_DAYS)
    return secret


def _invitation_mail(
    *, invitation: Invitation, secret: str, site_url: str, subject: str = "Invitation"
) -> None:
    link = f"{site_url.rstrip('/')}{reverse('turing:invitation_accept', args=[secret])}"
    body = render_to_string(
        "turing/email/invitation.txt",
        {"study": invitation.study, "link": link, "expires_at": invitation.expires_at},
    )
    send_mail(f"{subject}: {invitation.study.name}", body, None, [invitation.email])


def _expert_for(email: str) -> Any:
    """The expert account with this address, made when there is none (signed in by the link, no password)."""
    existing = get_user_model().objects.filter(email__iexact=email).order_by("id").first()
    if existing is not None:
        return existing
    user, _ = user_create(username=email, role="expert", email=email, validate=False)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    return user


def invitations_send(
    *, study: Study, emails: Iterable[str], created_by: UserLike | None, site_url: str
) -> InvitationReport:
    """Invite each address: an expert account if there is none, the reader's items, and an e-mail with
    a link that signs them in once. An address already invited to this study is said, not re-sent."""
    report = InvitationReport()
    if not study.is_open:
        raise StudyError("This study is closed: reopen it before inviting readers.")
    for raw in dict.fromkeys(e.strip().lower() for e in emails if e.strip()):
        try:
            validate_email(raw)
        except ValidationError:
            report.refused.append(f"{raw}: not an e-mail address")
            continue
        if Invitation.objects.filter(study=study, email=raw).exists():
            report.already.append(raw)
            continue
        with transaction.atomic():
            try:
                reader = _expert_for(raw)
            except ValidationError:  # the address is the user name of an account with another address
                report.refused.append(
                    f"{raw}: a user of that name exists with another e-mail address; invite them from the "
                    "list of experts, or give their account this address"
                )
                continue
            if not is_expert(reader):
                report.refused.append(f"{raw}: the account with this address is not an expert's")
                continue
            study_invite(study=study, reader=reader, actor=created_by)
            invitation = Invitation(study=study, email=raw, reader=reader, created_by=signed_in(created_by))
            secret = _invitation_issue(invitation)
            invitation.save()
            transaction.on_commit(
                partial(_invitation_mail, invitation=invitation, secret=secret, site_url=site_url)
            )
        report.sent.append(raw)
    return report


def invitation_remind(*, invitation: Invitation, site_url: str, actor: UserLike | None = None) -> Invitation:
    """Remind a reader who has not finished: their invitation sent again with a new link (the old one
    stops working), recorded in the audit trail. Refused for a withdrawn invitation, a removed reader
    and one who has finished."""
    assignment = Assignment.objects.filter(
        study_id=invitation.study_id, reader_id=invitation.reader_id
    ).first()
    if assignment is None or assignment.removed_at is not None:
        raise StudyError(f"{invitation.email} is not a reader of this study: there is nothing to remind.")
    if assignment.finished_at is not None:
        raise StudyError(f"{invitation.email} has finished: a reminder is not needed.")
    with transaction.atomic():
        invitation_resend(invitation=invitation, site_url=site_url, subject="Reminder")
        answered = Answer.objects.filter(assignment=assignment, label__isnull=False).count()
        study_event_record(
            study=invitation.study,
            kind=StudyEvent.Kind.REMINDED,
            actor=actor,
            after={"assignment": assignment.pk, "answered": answered, "of": assignment.total},
        )
    return invitation


def reminders_send(*, study: Study, site_url: str, actor: UserLike | None = None) -> list[str]:
    """A reminder to every invited reader who has not finished (not withdrawn, not removed): the
    addresses reminded."""
    reminded = []
    unfinished = Assignment.objects.filter(study=study, finished_at__isnull=True, removed_at__isnull=True)
    readers = set(unfinished.values_list("reader_id", flat=True))
    for invitation in study.invitations.filter(revoked_at__isnull=True, reader_id__in=readers).order_by(
        "email"
    ):
        invitation_remind(invitation=invitation, site_url=site_url, actor=actor)
        reminded.append(invitation.email)
    return reminded


def invitation_resend(*, invitation: Invitation, site_url: str, subject: str = "Invitation") -> Invitation:
    """A new link (the old one stops working), valid for another INVITATION_VALID_DAYS. A withdrawn
    invitation stays withdrawn: sending it again would revive what a manager ended."""
    if invitation.revoked_at is not None:
        raise StudyError(
            f"The invitation of {invitation.email} was withdrawn, and a withdrawn invitation is not sent "
            "again: invite the address anew if they should read."
        )
    secret = _invitation_issue(invitation)
    invitation.used_at = invitation.revoked_at = None
    invitation.times_sent += 1
    invitation.save()
    _invitation_mail(invitation=invitation, secret=secret, site_url=site_url, subject=subject)
    return invitation


def invitation_revoke(*, invitation: Invitation, actor: UserLike | None = None) -> bool:
    """Withdraw the link. An invitation never used takes its reader's enrolment with it when they have
    answered nothing (recorded); True when it did."""
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if locked.revoked_at is None:
            locked.revoked_at = invitation.revoked_at = timezone.now()
            locked.save(update_fields=["revoked_at"])
        if locked.used_at is not None:
            return False
        assignment = Assignment.objects.filter(study_id=locked.study_id, reader_id=locked.reader_id).first()
        if assignment is None or Answer.objects.filter(assignment=assignment).exists():
            return False
        study_event_record(
            study=locked.study,
            kind=StudyEvent.Kind.READER_REMOVED,
            actor=actor,
            before={"reader": locked.reader_id, "assignment": assignment.pk, "seed": assignment.seed},
            after={"why": "invitation withdrawn before it was used"},
        )
        assignment.delete()
    return True


def invitation_accept(*, secret: str) -> Invitation:
    """Use a link once: the invitation it names, marked used; or InvitationError saying why not."""
    secret_hash = hashlib.sha256(secret.encode()).hexdigest()
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("reader", "study")
            .filter(secret_hash=secret_hash)
            .first()
        )
        if invitation is None:
            raise InvitationError("This link is not valid: it may have been replaced by a newer one.")
        state = invitation.state(timezone.now())
        if state != "waiting":
            why = {"revoked": "was withdrawn", "used": "has been used already", "expired": "has expired"}[
                state
            ]
            raise InvitationError(f"This invitation link {why}.")
        invitation.used_at = timezone.now()
        invitation.save(update_fields=["used_at"])
    return invitation
