"""Verifying a frozen study: what changed in its record since the freeze, each difference named."""

from __future__ import annotations

from hmac import compare_digest
from typing import Any

from analysis import chain
from turing.models import (
    Answer,
    Assignment,
    RepeatRead,
    Study,
    StudyEvent,
)
from turing.services.record import (
    ANSWER_FIELDS,
    EVENT_FIELDS,
    PROFILE_FIELDS,
    answer_state,
    event_state,
    profile_state,
    protocol_hash,
    reader_chain,
    seal,
    study_protocol,
)

# Settings added to the protocol after studies had been frozen without them, with the value every such
# study had: a kept protocol that lacks one is read with it.
LATER_SETTINGS: dict[str, Any] = {"equal_transforms": False, "stain_target": []}


def study_verify(*, study: Study) -> list[str]:
    """What changed in a study's record, even by SQL, each difference named ("item X's truth",
    "assignment Y's reader", "answer Z's label", "setting F"); empty when the record is intact.

    Two checks. The protocol: recomputed from the rows as they are now and compared with the protocol
    kept at the freeze, whose own hash must still be the stored one; readers enrolled after the freeze
    are checked against their enrolment records. The record: every chain's hashes recomputed and every
    seal checked (`analysis.chain`), and every event, answer and profile compared with its last entry."""
    return _protocol_differences(study) + record_differences(study=study)


def record_differences(*, study: Study) -> list[str]:
    """The chains' breaks, seals this server did not make, and rows that differ from their last entry."""
    rows = study.record.order_by("chain", "seq").values_list(
        "chain", "seq", "kind", "content", "prev", "hash", "seal"
    )
    entries, problems = [], []
    for name, seq, kind, content, prev, entry_hash, entry_seal in rows:
        entries.append(chain.Entry(name, seq, kind, content, prev, entry_hash))
        if not compare_digest(seal(entry_hash), entry_seal):
            problems.append(f"record entry {seq} of chain {name!r} was not sealed by this server")
    breaks, _heads = chain.chain_problems(entries)
    problems = breaks + problems
    current: dict[tuple[str, str], dict[str, Any]] = {}
    for row in StudyEvent.objects.filter(study=study).values(*EVENT_FIELDS):
        current["event", str(row["id"])] = event_state(row)
    answered = Answer.objects.filter(assignment__study=study, label__isnull=False)
    answered_at: dict[tuple[int, int], Any] = {}
    for row in answered.values(*ANSWER_FIELDS):
        current["answer", str(row["id"])] = answer_state(row)
        answered_at[row["assignment_id"], row["position"]] = row["answered_at"]
    profiled = Assignment.objects.filter(study=study, profile_at__isnull=False)
    for row in profiled.values("pk", *PROFILE_FIELDS):
        current["profile", reader_chain(row["pk"])] = profile_state(row)
    problems += chain.state_differences(chain.latest_states(entries), current)
    removed = {
        e.before.get("assignment"): e.after.get("removed_at")
        for e in study.events.filter(kind=StudyEvent.Kind.READER_REMOVED)
        if "removed_at" in e.after
    }
    readers = list(
        Assignment.objects.filter(study=study).values_list("pk", "order", "finished_at", "removed_at")
    )
    orders = {pk: order or [] for pk, order, _finished_at, _removed_at in readers}
    for pk, _order, finished_at, removed_at in readers:
        # A reader finishes when their last patch is answered, at that answer's time (`answer_submit`):
        # the finish is checked against that answer, whose own row is checked against its record above.
        if finished_at != answered_at.get((pk, len(orders[pk]) - 1)):
            problems.append(f"assignment {pk}'s finish differs from its last answer")
        if (removed_at.isoformat() if removed_at else None) != removed.get(pk):
            problems.append(f"assignment {pk}'s removal differs from its record")
    # A repeat read's image comes from its own row: it must show the item its reader's order puts there.
    repeats = RepeatRead.objects.filter(assignment__study=study).values_list(
        "assignment_id", "position", "item__token"
    )
    for assignment_id, position, token in repeats:
        order = orders.get(assignment_id) or []
        if position >= len(order) or order[position] != token:
            problems.append(
                f"the repeat read at patch {position + 1} of assignment {assignment_id} shows another item"
            )
    return problems


def _protocol_differences(study: Study) -> list[str]:
    if study.frozen_at is None:
        if Answer.objects.filter(assignment__study=study, label__isnull=False).exists():
            return ["the study has answers but is not frozen: its freeze was removed"]
        return []
    frozen = study.protocol
    now = study_protocol(study=study)
    if not frozen:
        # Frozen before the protocol was kept beside its hash: only the hash, in the form of then, can
        # be checked, and a difference cannot be named.
        if protocol_hash(_protocol_before_kept(now)) == study.protocol_hash:
            return []
        return ["the protocol differs from its hash at the freeze (frozen before differences could be named)"]
    differences = []
    if protocol_hash(frozen) != study.protocol_hash:
        differences.append("the protocol kept at the freeze no longer matches its hash")
    kept = frozen.get("settings", {})
    for name in sorted(set(kept) | set(now["settings"])):
        then, current = kept.get(name, LATER_SETTINGS.get(name)), now["settings"].get(name)
        if then != current:
            differences.append(f"setting {name}: {then!r} at the freeze, {current!r} now")
    for key in ("seed", "real_datasets", "synthetic_datasets", "arms", "practice"):
        if frozen.get(key) != now[key]:
            differences.append(f"the study's {key.replace('_', ' ')} changed since the freeze")
    fields = ("patch content", "truth", "arm")
    then_items = {row[0]: row[1:] for row in frozen.get("items", [])}
    now_items = {row[0]: row[1:] for row in now["items"]}
    for token in sorted(set(then_items) | set(now_items)):
        if token not in now_items or token not in then_items:
            differences.append(f"item {token} was {'removed' if token not in now_items else 'added'}")
            continue
        for what, a, b in zip(fields, then_items[token], now_items[token], strict=True):
            if a != b:
                differences.append(f"item {token}'s {what}: {a!r} at the freeze, {b!r} now")
    differences += _image_differences(frozen, now, items=set(then_items) | set(now_items))
    then_readers = {row[0]: row[1:] for row in frozen.get("assignments", [])}
    now_readers = {row[0]: row[1:] for row in now["assignments"]}
    for pk in sorted(set(then_readers) | set(now_readers)):
        if pk not in now_readers or pk not in then_readers:
            differences.append(f"assignment {pk} {'is gone' if pk not in now_readers else 'appeared'}")
            continue
        for what, a, b in zip(("reader", "seed", "order"), then_readers[pk], now_readers[pk], strict=True):
            if a != b:
                differences.append(f"assignment {pk}'s {what} changed since the freeze")
    enrolled = {
        e.after.get("assignment"): e.after
        for e in study.events.filter(kind=StudyEvent.Kind.READER_ADDED, at__gt=study.frozen_at)
    }
    later = Assignment.objects.filter(study=study, invited_at__gt=study.frozen_at)
    for pk, reader, seed in later.values_list("pk", "reader_id", "seed"):
        record = enrolled.get(pk)
        if record is None:
            differences.append(f"assignment {pk} has no enrolment record")
        elif (record.get("reader"), record.get("seed")) != (reader, seed):
            differences.append(f"assignment {pk}'s reader or seed differs from its enrolment record")
    return differences


def _image_differences(frozen: dict[str, Any], now: dict[str, Any], *, items: set[str]) -> list[str]:
    """Served images whose bytes are not those hashed at the freeze (studies frozen before these hashes
    were kept have none to compare)."""
    if "images" not in frozen:
        return []
    then, current = dict(frozen["images"]), dict(now["images"])
    return [
        f"{'item' if token in items else 'practice patch'} {token}'s image (the bytes readers are shown) "
        "changed since the freeze"
        for token in sorted(set(then) | set(current))
        if then.get(token) != current.get(token)
    ]


def _protocol_before_kept(protocol: dict[str, Any]) -> dict[str, Any]:
    """A protocol in the form studies frozen before it was kept were hashed in: no planned readers, no
    assignments, no served images, items as (content hash, truth, arm)."""
    settings = {
        k: v for k, v in protocol["settings"].items() if k != "planned_readers" and k not in LATER_SETTINGS
    }
    items = sorted([content_hash, truth, arm] for _token, content_hash, truth, arm in protocol["items"])
    rest = {k: v for k, v in protocol.items() if k not in ("settings", "items", "assignments", "images")}
    return rest | {"settings": settings, "items": items}
