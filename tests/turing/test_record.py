"""The tamper-evident record: answers, events and profiles chained as they are written, so that an
edit by SQL of an answer, an event, a profile, a removal or the record itself is found and named, and
a record rewritten with its hashes recomputed still fails (its seals are the server's)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Max
from django.utils import timezone

from analysis import chain
from tests.turing.fixtures import study_for
from turing.models import Answer, Assignment, RecordEntry, Study, StudyEvent
from turing.selectors import study_record_head
from turing.services import (
    answer_next,
    answer_reasons_set,
    answer_submit,
    assignment_profile_set,
    reader_remove,
    study_verify,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def read(real_lym: Any, synthetic_lym: Any, expert: Any, other_expert: Any) -> Study:
    """Two readers who answered three patches each (synthetic, real, real), one giving reasons, one
    changing an answer, and a profile."""
    study = study_for(
        real_lym,
        synthetic_lym,
        [expert, other_expert],
        items_per_reader=6,
        allow_changes=True,
        ask_reasons=True,
        ask_profile=True,
    )
    for reader in (expert, other_expert):
        assignment = study.assignments.get(reader=reader)
        assignment_profile_set(
            assignment=assignment, role="pathologist", years=12, gi_subspecialty=True, seen_synthetic=False
        )
        for label in ("synthetic", "real", "real"):
            token = answer_next(assignment=Assignment.objects.get(pk=assignment.pk)).token
            answer_submit(study_id=study.pk, reader=reader, token=token, label=label, confidence=3)
            if label == "synthetic":
                answer_reasons_set(study_id=study.pk, reader=reader, token=token, reasons=["nuclei"])
    assignment = study.assignments.get(reader=expert)
    first = Answer.objects.get(assignment=assignment, position=0)
    answer_submit(
        study_id=study.pk,
        reader=expert,
        token=first.item.token,
        label="real",
        confidence=5,
        position=0,
        revise=True,
    )
    return Study.objects.get(pk=study.pk)


def test_every_write_is_chained_and_an_untouched_record_is_intact(read: Study) -> None:
    kinds = list(read.record.values_list("chain", "kind"))
    readers = read.assignments.order_by("id")
    first, second = (f"reader {a.pk}" for a in readers)
    # taken (3), reasons (1), the change (1), and the profile: each a state of its own
    assert sorted(k for c, k in kinds if c == first) == ["answer"] * 5 + ["profile"]
    assert sorted(k for c, k in kinds if c == second) == ["answer"] * 4 + ["profile"]
    assert {k for c, k in kinds if c == "study"} == {"event"}
    assert read.record.filter(chain="study").count() == read.events.count()
    assert study_verify(study=read) == []


def _answer(study: Study, position: int = 1) -> Answer:
    return Answer.objects.get(
        assignment__study=study, assignment__reader__username="expert-a", position=position
    )


def _relabel(study: Study) -> str:
    answer = _answer(study)
    Answer.objects.filter(pk=answer.pk).update(label="synthetic")
    return f"answer {answer.pk} (patch 2, read 1)'s label: 'real' in the record, 'synthetic' now"


def _reconfidence(study: Study) -> str:
    answer = _answer(study)
    Answer.objects.filter(pk=answer.pk).update(confidence=1)
    return f"answer {answer.pk} (patch 2, read 1)'s confidence: 3 in the record, 1 now"


def _delete_answer(study: Study) -> str:
    answer = _answer(study, 2)
    Answer.objects.filter(pk=answer.pk).delete()
    return f"answer {answer.pk} (patch 3, read 1) is in the record but was deleted"


def _answer_behind_the_application(study: Study) -> str:
    assignment = study.assignments.get(reader__username="expert-a")
    answer_next(assignment=assignment)  # the next patch's row, shown, unanswered
    shown = Answer.objects.get(assignment=assignment, position=3)
    Answer.objects.filter(pk=shown.pk).update(label="real", confidence=4)
    return f"answer {shown.pk} (patch 4, read 1) is not in the record"


def _reasons(study: Study) -> str:
    answer = Answer.objects.filter(assignment__study=study, reasons__isnull=False).order_by("id").first()
    Answer.objects.filter(pk=answer.pk).update(reasons=["colour"])
    return f"answer {answer.pk} (patch 1, read 1)'s reasons: ['nuclei'] in the record, ['colour'] now"


def _event(study: Study) -> str:
    event = study.events.get(kind=StudyEvent.Kind.ANSWER_CHANGED)
    StudyEvent.objects.filter(pk=event.pk).update(after=event.after | {"label": "synthetic"})
    return f"event {event.pk} (answer changed)'s after"


def _delete_event(study: Study) -> str:
    event = study.events.get(kind=StudyEvent.Kind.ANSWER_CHANGED)
    StudyEvent.objects.filter(pk=event.pk).delete()
    return f"event {event.pk} (answer changed) is in the record but was deleted"


def _profile(study: Study) -> str:
    assignment = study.assignments.get(reader__username="expert-a")
    Assignment.objects.filter(pk=assignment.pk).update(profile_years=30)
    return f"the profile of reader {assignment.pk}'s years: 12 in the record, 30 now"


def _unremove(study: Study) -> str:
    assignment = study.assignments.get(reader__username="expert-b")
    reader_remove(study=study, assignment_id=assignment.pk, reason="did not follow the instructions")
    Assignment.objects.filter(pk=assignment.pk).update(removed_at=None)
    return f"assignment {assignment.pk}'s removal differs from its record"


def _finished_early(study: Study) -> str:
    """A reader marked finished half-way (the planning pilot and the archive read who finished)."""
    assignment = study.assignments.get(reader__username="expert-b")
    Assignment.objects.filter(pk=assignment.pk).update(finished_at=timezone.now())
    return f"assignment {assignment.pk}'s finish differs from its last answer"


def _entry_content(study: Study) -> str:
    entry = study.record.filter(kind="answer").order_by("chain", "seq").first()
    RecordEntry.objects.filter(pk=entry.pk).update(content=entry.content | {"label": "real"})
    return f"record entry {entry.seq} of chain {entry.chain!r}: its content no longer matches its hash"


def _entry_deleted(study: Study) -> str:
    entry = study.record.filter(kind="answer", seq=1).order_by("chain").first()
    RecordEntry.objects.filter(pk=entry.pk).delete()
    return f"record entry 2 of chain {entry.chain!r}: entries 1 to 1 are missing"


def _rewritten_with_hashes(study: Study) -> str:
    """The attack a plain hash chain cannot stop: the answer and its last entry both changed, the hash
    recomputed. Only the seal, which needs the server's key, gives it away."""
    assignment = study.assignments.get(reader__username="expert-a")
    chain_name = f"reader {assignment.pk}"
    last = study.record.filter(chain=chain_name).aggregate(Max("seq"))["seq__max"]
    entry = study.record.get(chain=chain_name, seq=last)
    answer = Answer.objects.get(pk=entry.content["answer"])  # the revised first answer: real now
    Answer.objects.filter(pk=answer.pk).update(label="synthetic")
    content = entry.content | {"label": "synthetic"}
    RecordEntry.objects.filter(pk=entry.pk).update(
        content=content, hash=chain.entry_hash(entry.prev, content)
    )
    return f"record entry {last} of chain {chain_name!r} was not sealed by this server"


@pytest.mark.parametrize(
    "edit",
    [
        _relabel,
        _reconfidence,
        _delete_answer,
        _answer_behind_the_application,
        _reasons,
        _event,
        _delete_event,
        _profile,
        _unremove,
        _finished_early,
        _entry_content,
        _entry_deleted,
        _rewritten_with_hashes,
    ],
)
def test_each_edit_behind_the_application_is_found_and_named(
    read: Study, edit: Callable[[Study], str]
) -> None:
    expected = edit(read)
    found = study_verify(study=Study.objects.get(pk=read.pk))
    assert any(expected in line for line in found), found


def test_a_finish_is_the_time_of_the_last_answer_and_an_edit_of_it_is_named(read: Study, expert: Any) -> None:
    assignment = read.assignments.get(reader=expert)
    while (token := answer_next(assignment=Assignment.objects.get(pk=assignment.pk)).token) is not None:
        answer_submit(study_id=read.pk, reader=expert, token=token, label="real", confidence=2)
    finished = Assignment.objects.get(pk=assignment.pk).finished_at
    assert finished is not None and study_verify(study=read) == []
    for edit in (None, finished - timedelta(days=1)):  # unfinished, and finished the day before
        Assignment.objects.filter(pk=assignment.pk).update(finished_at=edit)
        assert study_verify(study=read) == [
            f"assignment {assignment.pk}'s finish differs from its last answer"
        ]


def test_the_record_head_moves_with_each_write_and_only_then(read: Study, expert: Any) -> None:
    head = study_record_head(study_id=read.pk)
    assert head == study_record_head(study_id=read.pk) and len(head) == 64
    assignment = read.assignments.get(reader=expert)
    token = answer_next(assignment=assignment).token
    answer_submit(study_id=read.pk, reader=expert, token=token, label="real", confidence=2)
    assert study_record_head(study_id=read.pk) != head


def test_the_chain_rule_on_hand_made_entries() -> None:
    """`analysis.chain` alone: a chain built by its rule checks; a changed content, a skipped entry or a
    link to the wrong entry are each named; the head covers every chain."""
    entries, prev = [], chain.GENESIS
    for seq, label in enumerate(["real", "synthetic", "real"]):
        content = {"answer": seq, "label": label, "position": seq, "read": 1}
        entries.append(chain.Entry("reader 1", seq, "answer", content, prev, chain.entry_hash(prev, content)))
        prev = entries[-1].hash
    problems, heads = chain.chain_problems(entries)
    assert problems == [] and heads == {"reader 1": (3, prev)}
    head = chain.record_head(heads)
    assert head != chain.record_head({"reader 1": (2, entries[1].hash)})
    assert head != chain.record_head(heads | {"study": (1, entries[0].hash)})
    changed = [entries[0], chain.Entry(**{**entries[1].__dict__, "content": {"label": "real"}}), entries[2]]
    assert chain.chain_problems(changed)[0] == [
        "record entry 1 of chain 'reader 1': its content no longer matches its hash"
    ]
    skipped = [entries[0], entries[2]]
    assert chain.chain_problems(skipped)[0] == [
        "record entry 2 of chain 'reader 1': entries 1 to 1 are missing",
        "record entry 2 of chain 'reader 1' does not follow the entry before it",
    ]
