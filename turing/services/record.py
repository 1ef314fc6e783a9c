"""The audit trail, the frozen protocol and the tamper-evident record: what a study's record holds and
how it is hashed and chained (`analysis.chain` holds the rule, `RecordEntry` the links)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.crypto import salted_hmac

from analysis import chain
from core.roles import UserLike, signed_in
from turing.models import (
    Answer,
    Assignment,
    PracticeItem,
    RecordEntry,
    Study,
    StudyEvent,
    StudyItemImage,
)

PROTOCOL_SETTINGS = (
    "tissue_class",
    "items_per_reader",
    "real_parts",
    "synthetic_parts",
    "same_items_for_all",
    "allow_changes",
    "ask_confidence",
    "instructions",
    "equivalence_margin",
    "alpha",
    "planned_readers",
    "harmonise_jpeg_quality",
    "equal_transforms",
    "stain_target",
    "too_fast_ms",
    "ask_profile",
    "ask_reasons",
    "reasons",
    "practice_items",
    "repeat_share",
    "repeat_gap",
    "repeat_washout_days",
)


def protocol_settings(study: Study) -> dict[str, Any]:
    return {name: getattr(study, name) for name in PROTOCOL_SETTINGS}


def study_event_record(
    *,
    study: Study,
    kind: str,
    actor: UserLike | None = None,
    before: dict | None = None,
    after: dict | None = None,
) -> StudyEvent:
    """Add one row to the study's audit trail (rows are only ever added), chained into its record in the
    same transaction."""
    with transaction.atomic():
        event = StudyEvent.objects.create(
            study=study,
            kind=kind,
            actor=signed_in(actor),
            before=before or {},
            after=after or {},
        )
        row = StudyEvent.objects.filter(pk=event.pk).values(*EVENT_FIELDS).get()
        record_append(study_id=study.pk, chain_name=STUDY_CHAIN, kind="event", content=event_state(row))
    return event


def study_protocol(*, study: Study, at: Any = None) -> dict[str, Any]:
    """What the study's protocol hash covers: its settings, its seed, its pools, every item (token, patch
    content hash, truth, arm), the SHA-256 of the bytes each item and practice patch is served as, and
    every reader enrolled by the freeze (`at`, default the study's `frozen_at`): assignment, reader, seed
    and a hash of their order. Readers enrolled later are events (`reader added`, with their seed), not
    protocol."""
    items = sorted(
        [token, content_hash, truth, arm or ""]
        for token, content_hash, truth, arm in study.items.values_list(
            "token", "patch__content_hash", "truth", "arm__name"
        )
    )
    at = at or study.frozen_at
    enrolled = Assignment.objects.filter(study=study).order_by("id")
    enrolled = enrolled.filter(invited_at__lte=at) if at is not None else enrolled
    # As its JSON column gives it back (tuples as lists), so that the kept protocol compares equal.
    return _normal(
        {
            "settings": protocol_settings(study),
            "seed": study.seed,
            "real_datasets": sorted(study.real_datasets.values_list("pk", flat=True)),
            "synthetic_datasets": sorted(study.synthetic_datasets.values_list("pk", flat=True)),
            "arms": [
                {"name": a.name, "parts": a.parts, "datasets": sorted(d.pk for d in a.datasets.all())}
                for a in study.arms.prefetch_related("datasets")
            ],
            "items": items,
            "practice": sorted(study.practice.values_list("patch__content_hash", "truth")),
            "images": _served_image_hashes(study),
            "assignments": [
                [pk, reader, seed, protocol_hash({"order": order})]
                for pk, reader, seed, order in enrolled.values_list("pk", "reader_id", "seed", "order")
            ],
        }
    )


def _served_image_hashes(study: Study) -> list[list[str]]:
    """[token, SHA-256] of the bytes readers are shown for each item and practice patch: the patch's
    content hash says which picture was drawn, this says that the pixels served are still the ones made
    from it when the study was built (an image swapped in the table would otherwise go unseen)."""
    items = StudyItemImage.objects.filter(item__study=study).values_list("item__token", "png")
    practice = PracticeItem.objects.filter(study=study).values_list("token", "png")
    return sorted(
        [token, hashlib.sha256(bytes(png)).hexdigest()]
        for rows in (items, practice)
        for token, png in rows.iterator(chunk_size=100)
    )


def protocol_hash(protocol: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(protocol, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def study_freeze(*, study_id: int) -> None:
    """Freeze the study at its first answer: store its protocol hash, once."""
    with transaction.atomic():
        study = Study.objects.select_for_update().filter(pk=study_id, frozen_at__isnull=True).first()
        if study is None:
            return
        # The plan is at least the readers enrolled when the data start: a verdict given before all of
        # them finished would be a look chosen after seeing some of the data.
        study.planned_readers = max(
            study.planned_readers, study.assignments.filter(removed_at__isnull=True).count()
        )
        now = timezone.now()
        # The protocol as frozen is kept beside its hash, so that `study_verify` can name what changed.
        study.protocol = study_protocol(study=study, at=now)
        study.protocol_hash = protocol_hash(study.protocol)
        study.frozen_at = now
        study.save(update_fields=["planned_readers", "protocol", "protocol_hash", "frozen_at"])
        study_event_record(
            study=study, kind=StudyEvent.Kind.FROZEN, after={"protocol_hash": study.protocol_hash}
        )


# --- The tamper-evident record ------------------------------------------------------------------------

STUDY_CHAIN = "study"
EVENT_FIELDS = ("id", "kind", "actor_id", "at", "before", "after")
ANSWER_FIELDS = (
    "id",
    "assignment_id",
    "item__token",
    "position",
    "read",
    "label",
    "confidence",
    "shown_at",
    "answered_at",
    "visible_ms",
    "changed_at",
    "reasons",
    "click_x",
    "click_y",
)
PROFILE_FIELDS = ("profile_role", "profile_years", "profile_gi", "profile_seen_synthetic", "profile_at")


def reader_chain(assignment_id: int) -> str:
    return f"reader {assignment_id}"


def _when(value: datetime | None) -> str | None:
    """One spelling of an instant whatever the database's time zone."""
    return None if value is None else value.astimezone(UTC).isoformat()


def _number(value: float | None) -> float | None:
    return None if value is None else float(value) + 0.0  # -0.0 would not survive every JSON column


def _normal(content: dict[str, Any]) -> dict[str, Any]:
    """Content exactly as a JSON column gives it back (tuples as lists, keys as strings)."""
    return dict(json.loads(chain.canonical(content)))


def event_state(row: dict[str, Any]) -> dict[str, Any]:
    """What an event's record entry holds, from its row's `EVENT_FIELDS`."""
    return _normal(
        {
            "event": row["id"],
            "kind": row["kind"],
            "actor": row["actor_id"],
            "at": _when(row["at"]),
            "before": row["before"],
            "after": row["after"],
        }
    )


def answer_state(row: dict[str, Any]) -> dict[str, Any]:
    """What an answer's record entry holds, from its row's `ANSWER_FIELDS`: everything a statistic or an
    export reads of it. Every value is already as a JSON column gives it back (`_normal` is not needed:
    this runs for every answer when a study is verified)."""
    return {
        "answer": row["id"],
        "item": row["item__token"],
        "position": row["position"],
        "read": row["read"],
        "label": row["label"],
        "confidence": row["confidence"],
        "shown_at": _when(row["shown_at"]),
        "answered_at": _when(row["answered_at"]),
        "visible_ms": row["visible_ms"],
        "changed_at": _when(row["changed_at"]),
        "reasons": row["reasons"],
        "click": [_number(row["click_x"]), _number(row["click_y"])],
    }


def profile_state(row: dict[str, Any]) -> dict[str, Any]:
    return _normal({name.removeprefix("profile_"): row[name] for name in PROFILE_FIELDS[:-1]}) | {
        "at": _when(row["profile_at"])
    }


def seal(entry_hash: str) -> str:
    """A keyed hash of an entry's hash: only a holder of the server's SECRET_KEY can make one, so a
    record rewritten by SQL with its hashes recomputed still fails `study_verify`."""
    return salted_hmac("histoturing.record", entry_hash, algorithm="sha256").hexdigest()


def record_append(*, study_id: int, chain_name: str, kind: str, content: dict[str, Any]) -> str:
    """Chain one entry to the end of a chain, inside the caller's transaction; returns its hash. The
    chain's owner row (the study, or the reader's assignment) is locked first, so two writes never take
    one place (SQLite's IMMEDIATE transactions serialise writers already).

    Three plain statements rather than the ORM's: this runs with every answer, where building querysets
    and a model instance cost more than the statements themselves."""
    owner: type[Model] = Study if chain_name == STUDY_CHAIN else Assignment
    owner_pk = study_id if chain_name == STUDY_CHAIN else int(chain_name.rpartition(" ")[2])
    qn = connection.ops.quote_name
    table = qn(RecordEntry._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.features.has_select_for_update:
            cursor.execute(f"SELECT id FROM {qn(owner._meta.db_table)} WHERE id = %s FOR UPDATE", [owner_pk])  # noqa: S608
        cursor.execute(
            f"SELECT seq, hash FROM {table} WHERE study_id = %s AND chain = %s ORDER BY seq DESC LIMIT 1",  # noqa: S608
            [study_id, chain_name],
        )
        last = cursor.fetchone()
        seq, prev = (int(last[0]) + 1, str(last[1])) if last else (0, chain.GENESIS)
        entry_hash = chain.entry_hash(prev, content)
        stored = RecordEntry._meta.get_field("content").get_db_prep_value(content, connection)
        cursor.execute(
            f"INSERT INTO {table} (study_id, chain, seq, kind, content, prev, hash, seal, at) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [study_id, chain_name, seq, kind, stored, prev, entry_hash, seal(entry_hash), timezone.now()],
        )
    return entry_hash


def answer_record(*, study_id: int, answer_id: int) -> str:
    """Chain an answer's state as it now stands (after it was taken, changed, or given reasons)."""
    row = Answer.objects.filter(pk=answer_id).values(*ANSWER_FIELDS).get()
    return answer_state_record(study_id=study_id, row=row)


def answer_state_record(*, study_id: int, row: dict[str, Any]) -> str:
    """Chain an answer's state from a row of `ANSWER_FIELDS` the caller already holds (the answer
    statement's own RETURNING), as `answer_record` would read it."""
    return record_append(
        study_id=study_id,
        chain_name=reader_chain(row["assignment_id"]),
        kind="answer",
        content=answer_state(row),
    )


def stored_datetime(value: datetime | str) -> datetime:
    """A timestamp as a plain statement returns it: PostgreSQL gives a datetime, SQLite the text Django
    stored (UTC, without an offset), read here as the ORM reads it."""
    if isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def profile_record(*, study_id: int, assignment_id: int) -> str:
    row = Assignment.objects.filter(pk=assignment_id).values(*PROFILE_FIELDS).get()
    return record_append(
        study_id=study_id,
        chain_name=reader_chain(assignment_id),
        kind="profile",
        content=profile_state(row),
    )
