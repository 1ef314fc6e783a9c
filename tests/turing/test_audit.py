"""The audit trail and the frozen protocol: every change recorded, the study fixed at its first answer."""

from __future__ import annotations

import copy
import csv
import io
import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from turing.models import Answer, Study, StudyEvent
from turing.selectors import study_record_head
from turing.services import (
    StudyError,
    answer_next,
    answer_submit,
    protocol_hash,
    study_invite,
    study_protocol,
    study_protocol_set,
    study_set_status,
)

pytestmark = pytest.mark.django_db


def _kinds(study: Study) -> list[str]:
    return list(study.events.values_list("kind", flat=True))


def _answer_first(study: Study, reader: Any, label: str = "real", confidence: int = 3) -> str:
    assignment = study_invite(study=study, reader=reader)
    token = answer_next(assignment=assignment).token
    assert token is not None
    answer_submit(study_id=study.pk, reader=reader, token=token, label=label, confidence=confidence)
    return token


def test_building_a_study_and_inviting_readers_are_recorded(
    study: Study, other_expert: Any, manager: Any
) -> None:
    created = study.events.get(kind=StudyEvent.Kind.CREATED)
    assert created.actor == manager and created.after["items_per_reader"] == 10
    study_invite(study=study, reader=other_expert, actor=manager)
    study_invite(study=study, reader=other_expert, actor=manager)  # again: nothing new
    added = study.events.filter(kind=StudyEvent.Kind.READER_ADDED)
    assert added.count() == 2 and added.last().after["reader"] == other_expert.pk


def test_status_and_protocol_changes_are_recorded_with_before_and_after(study: Study, manager: Any) -> None:
    study_protocol_set(study=study, equivalence_margin=0.12, alpha=0.01, actor=manager)
    study_set_status(study=study, status="closed", actor=manager)
    protocol = study.events.get(kind=StudyEvent.Kind.PROTOCOL)
    assert protocol.before == {"equivalence_margin": 0.10, "alpha": 0.05}
    assert protocol.after == {"equivalence_margin": 0.12, "alpha": 0.01} and protocol.actor == manager
    status = study.events.get(kind=StudyEvent.Kind.STATUS)
    assert (status.before, status.after) == ({"status": "open"}, {"status": "closed"})


def test_the_first_answer_freezes_the_study_once(study: Study, expert: Any, other_expert: Any) -> None:
    assert not study.protocol_hash and study.frozen_at is None
    _answer_first(study, expert)
    study.refresh_from_db()
    first_hash, frozen_at = study.protocol_hash, study.frozen_at
    assert len(first_hash) == 64 and frozen_at is not None
    assert first_hash == protocol_hash(study_protocol(study=study))
    _answer_first(study, other_expert)
    study.refresh_from_db()
    assert (study.protocol_hash, study.frozen_at) == (first_hash, frozen_at)
    assert _kinds(study).count("frozen") == 1
    with pytest.raises(StudyError, match="frozen"):
        study_protocol_set(study=study, equivalence_margin=0.2, alpha=0.05)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["settings"].update(equivalence_margin=0.11),
        lambda p: p["settings"].update(instructions="Other words."),
        lambda p: p.update(seed=p["seed"] + 1),
        lambda p: p["items"][0].__setitem__(2, "synthetic" if p["items"][0][2] == "real" else "real"),
        lambda p: p["items"][0].__setitem__(1, "0" * 64),
        lambda p: p["items"].pop(),
        lambda p: p["real_datasets"].append(999),
        lambda p: p["images"][0].__setitem__(1, "0" * 64),
    ],
    ids=["margin", "instructions", "seed", "truth", "patch", "item set", "pool", "served image"],
)
def test_the_protocol_hash_changes_when_any_frozen_input_does(study: Study, change: Any) -> None:
    protocol = study_protocol(study=study)
    changed = copy.deepcopy(protocol)
    change(changed)
    assert protocol_hash(changed) != protocol_hash(protocol)
    assert protocol_hash(copy.deepcopy(protocol)) == protocol_hash(protocol)


def test_every_answer_change_is_kept(study: Study, expert: Any) -> None:
    Study.objects.filter(pk=study.pk).update(allow_changes=True)
    token = _answer_first(study, expert, "real", 2)
    for confidence in (4, 5):
        answer_submit(
            study_id=study.pk,
            reader=expert,
            token=token,
            label="synthetic",
            confidence=confidence,
            position=0,
            revise=True,
        )
    changes = list(study.events.filter(kind=StudyEvent.Kind.ANSWER_CHANGED))
    assert [(c.before["label"], c.before["confidence"]) for c in changes] == [("real", 2), ("synthetic", 4)]
    assert [(c.after["label"], c.after["confidence"]) for c in changes] == [
        ("synthetic", 4),
        ("synthetic", 5),
    ]
    assert all(c.actor == expert and c.after["item"] == token for c in changes)
    assert Answer.objects.get(item__token=token).confidence == 5


def test_the_audit_is_exported_and_every_export_names_the_protocol_and_the_record_head(
    study: Study, expert: Any, manager_client: Client
) -> None:
    _answer_first(study, expert)
    study.refresh_from_db()
    head = study_record_head(study_id=study.pk)
    for kind in ("answers", "summary", "mrmc", "ratings", "imrmc", "audit"):
        response = manager_client.get(reverse("evaluation:study_export", args=[study.pk, kind]))
        assert response["X-Protocol-Hash"] == study.protocol_hash, kind
        assert response["X-Record-Head"] == head, kind
        assert study.protocol_hash[:12] in response["Content-Disposition"], kind
        assert (
            head[:12] in response["Content-Disposition"]
            and "user-names" not in response["Content-Disposition"]
        )
        if kind in ("summary", "mrmc"):
            assert head in b"".join(response.streaming_content).decode(), kind
    named = manager_client.get(reverse("evaluation:study_export", args=[study.pk, "answers"]) + "?names=1")
    assert "-answers-with-user-names-" in named["Content-Disposition"]
    assert (
        manager_client.get(reverse("evaluation:study_report", args=[study.pk])).content.decode().count(head)
        == 1
    )
    text = b"".join(
        manager_client.get(reverse("evaluation:study_export", args=[study.pk, "audit"])).streaming_content
    ).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["kind"] for r in rows] == ["created", "reader added", "frozen"]
    assert (
        rows[1]["actor"] == "manager-a"
        and json.loads(rows[2]["after"])["protocol_hash"] == study.protocol_hash
    )
    # The reader added is named as the report names them: a pseudonym, or (asked for) the user name.
    assert json.loads(rows[1]["after"])["reader"] == "R1"
    named_text = b"".join(
        manager_client.get(
            reverse("evaluation:study_export", args=[study.pk, "audit"]) + "?names=1"
        ).streaming_content
    ).decode()
    assert json.loads(list(csv.DictReader(io.StringIO(named_text)))[1]["after"])["reader"] == "expert-a"
    report = manager_client.get(reverse("evaluation:study_report", args=[study.pk])).content.decode()
    assert study.protocol_hash in report and "audit trail" in report


def test_the_admin_changes_nothing_of_a_study_but_its_name_and_records_that(
    administrator: Any, study: Study, expert: Any
) -> None:
    """The audit's attack: too_fast_ms, the shortcut check, repeat_share and the status saved through
    the admin change page of a frozen study (an administrator's: study managers have no study admin).
    Only the name can change there, and a rename is recorded."""
    manager_client = Client()
    manager_client.force_login(administrator)
    assignment = study.assignments.get()
    answer_submit(
        study_id=study.pk, reader=expert, token=answer_next(assignment=assignment).token, label="real"
    )
    study.refresh_from_db()
    url = reverse("admin:turing_study_change", args=[study.pk])
    page = manager_client.get(url)
    assert page.status_code == 200 and b'name="too_fast_ms"' not in page.content
    assert b'name="name"' in page.content
    before = study_protocol(study=study)
    posted = manager_client.post(
        url,
        {
            "name": "renamed",
            "too_fast_ms": 60000,
            "repeat_share": 0.5,
            "status": "closed",
            "shortcut_check": '{"warning": ""}',
            "arms-TOTAL_FORMS": "1",
            "arms-INITIAL_FORMS": "1",
            "arms-MIN_NUM_FORMS": "0",
            "arms-MAX_NUM_FORMS": "1000",
            "arms-0-id": str(study.arms.get().pk),
            "arms-0-study": str(study.pk),
        },
    )
    assert posted.status_code == 302, posted.content.decode()[:2000]
    after = Study.objects.get(pk=study.pk)
    assert after.name == "renamed" and after.status == "open" and after.too_fast_ms == study.too_fast_ms
    assert study_protocol(study=after) == before
    renamed = study.events.get(kind=StudyEvent.Kind.RENAMED)
    assert renamed.before == {"name": study.name} and renamed.after == {"name": "renamed"}
    assert manager_client.get(reverse("admin:turing_study_add")).status_code == 403
    assert (
        manager_client.post(
            reverse("admin:turing_study_delete", args=[study.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert Study.objects.filter(pk=study.pk).exists()


def test_the_admin_never_edits_a_readers_assignment(
    manager_client: Client, study: Study, expert: Any
) -> None:
    """Moving an assignment to another reader moved its answers, unaudited: now nothing of it changes."""
    assignment = study.assignments.get()
    url = reverse("admin:turing_assignment_change", args=[assignment.pk])
    page = manager_client.get(url)
    assert (
        page.status_code == 200
        and b'name="reader"' not in page.content
        and b'name="seed"' not in page.content
    )
    manager_client.post(url, {"reader": str(expert.pk), "seed": "1", "order": "[]"})
    assignment_after = type(assignment).objects.get(pk=assignment.pk)
    assert (assignment_after.seed, assignment_after.order) == (assignment.seed, assignment.order)
