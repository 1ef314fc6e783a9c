"""The audit trail and the frozen protocol: what a study's record holds and how it is hashed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.roles import signed_in
from turing.models import (
    Assignment,
    Study,
    StudyEvent,
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
    *, study: Study, kind: str, actor: Any = None, before: dict | None = None, after: dict | None = None
) -> StudyEvent:
    """Add one row to the study's audit trail (rows are only ever added)."""
    return StudyEvent.objects.create(
        study=study,
        kind=kind,
        actor=signed_in(actor),
        before=before or {},
        after=after or {},
    )


def study_protocol(*, study: Study, at: Any = None) -> dict[str, Any]:
    """What the study's protocol hash covers: its settings, its seed, its pools, every item (token, patch
    content hash, truth, arm) and every reader enrolled by the freeze (`at`, default the study's
    `frozen_at`): assignment, reader, seed and a hash of their order. Readers enrolled later are events
    (`reader added`, with their seed), not protocol."""
    items = sorted(
        [token, content_hash, truth, arm or ""]
        for token, content_hash, truth, arm in study.items.values_list(
            "token", "patch__content_hash", "truth", "arm__name"
        )
    )
    at = at or study.frozen_at
    enrolled = Assignment.objects.filter(study=study).order_by("id")
    enrolled = enrolled.filter(invited_at__lte=at) if at is not None else enrolled
    return {
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
        "assignments": [
            [pk, reader, seed, protocol_hash({"order": order})]
            for pk, reader, seed, order in enrolled.values_list("pk", "reader_id", "seed", "order")
        ],
    }


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
