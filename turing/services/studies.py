"""Building a study from its plan, enrolling and removing readers, and the changes a manager may make."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from core.roles import UserLike, is_expert, signed_in
from core.validators import has_control_characters
from gan import imaging
from turing.models import (
    Answer,
    Assignment,
    ReaderRole,
    RepeatRead,
    Study,
    StudyArm,
    StudyEvent,
    StudyItem,
    default_reasons,
)
from turing.services.design import (
    ArmSpec,
    ProtocolOptions,
    StudySpec,
    pool_resolution,
    protocol_problems,
    study_plan,
)
from turing.services.errors import StudyError
from turing.services.items import item_set_draw, order_draw, practice_draw, reader_order, stain_target_of
from turing.services.record import profile_record, protocol_settings, study_event_record


def _options_of(study: Study) -> ProtocolOptions:
    """A study's stored options (`ProtocolOptions` names its fields as the study does)."""
    names = [f.name for f in dataclasses.fields(ProtocolOptions) if f.name != "practice_datasets"]
    values = {name: getattr(study, name) for name in names}
    return ProtocolOptions(**values, practice_datasets=list(study.practice_datasets.all()))


def _arms_of(study: Study) -> list[ArmSpec]:
    return [ArmSpec(a.name, list(a.datasets.all()), a.parts) for a in study.arms.prefetch_related("datasets")]


def spec_of(study: Study) -> StudySpec:
    """A stored study's design, as `study_plan` reads it (to draw a later reader's own items)."""
    pools = ("real_datasets", "arms", "options", "stain_normalisation")
    names = [f.name for f in dataclasses.fields(StudySpec) if f.name not in pools]
    return StudySpec(
        **{name: getattr(study, name) for name in names},
        stain_normalisation=bool(study.stain_target),
        real_datasets=list(study.real_datasets.all()),
        arms=_arms_of(study),
        options=_options_of(study),
    )


def study_create(
    *, spec: StudySpec, readers: Iterable[User] = (), created_by: UserLike | None = None
) -> Study:
    """Build a study, draw its items and invite its readers, or refuse with every problem named.

    The verdict's rule (margin, alpha) is part of the study from here on, frozen at its first answer."""
    options, arms = spec.options, list(spec.arms)
    # The spec's settings of a study's own name are copied as they are (`spec_of` reads them back);
    # the rest are derived here.
    derived = {"name", "tissue_class", "real_datasets", "arms", "options", "seed", "reasons"} | {
        "stain_normalisation"
    }
    copied = {f.name: getattr(spec, f.name) for f in dataclasses.fields(StudySpec) if f.name not in derived}
    study = Study(
        **copied,
        name=spec.name.strip(),
        tissue_class=spec.tissue_class.strip().upper(),
        synthetic_parts=sum(arm.parts for arm in arms),
        microns_per_pixel=pool_resolution(spec.real_datasets),
        reasons=list(spec.reasons) if spec.reasons else default_reasons(),
        practice_items=options.practice_items,
        repeat_share=options.repeat_share,
        repeat_gap=options.repeat_gap,
        repeat_washout_days=options.repeat_washout_days,
        created_by=signed_in(created_by),
        **({"seed": spec.seed} if spec.seed is not None else {}),
    )
    plan = study_plan(spec)
    if spec.show_personal_result and spec.allow_changes:
        # A reopened study would let a reader who saw their result (and so learnt which answers were
        # wrong) change those answers.
        plan.problems.append(
            "A personal result at the close cannot go with answers that may be changed: once the study "
            "were reopened, readers could change the answers their result showed to be wrong."
        )
    if not study.name:
        plan.problems.insert(0, "The study needs a name.")
    elif has_control_characters(study.name):
        plan.problems.insert(
            0, "A study name cannot hold control characters (line breaks, tabs and the like)."
        )
    if not plan.ok:
        raise StudyError(" ".join(plan.problems))
    study.patch_size = plan.patch_size or imaging.PATCH_SIZE
    if spec.stain_normalisation:
        study.stain_target = stain_target_of(
            real_datasets=spec.real_datasets, tissue_class=study.tissue_class, seed=study.seed
        )
    with transaction.atomic():
        study.save()
        study.real_datasets.set(spec.real_datasets)
        for position, arm in enumerate(arms):
            row = StudyArm.objects.create(
                study=study, name=arm.name.strip(), parts=arm.parts, position=position
            )
            row.datasets.set(arm.datasets)
        study.synthetic_datasets.set({d.pk for arm in arms for d in arm.datasets})
        if options.practice_items:
            study.practice_datasets.set(options.practice_datasets)
            practice_draw(study, plan)
        if spec.same_items_for_all:
            item_set_draw(study, study.seed, plan)
        study_event_record(
            study=study, kind=StudyEvent.Kind.CREATED, actor=created_by, after=protocol_settings(study)
        )
        for reader in readers:
            study_invite(study=study, reader=reader, actor=created_by)
    return study


def reader_remove(
    *, study: Study, assignment_id: int, reason: str, actor: UserLike | None = None
) -> Assignment:
    """Take a reader out of a study: recorded with its reason; their answers are kept (and exported) and
    left out of every statistic, and their session can answer nothing more. Final: a removed reader is
    not put back (invite them to a new study)."""
    reason = " ".join(reason.split())
    if not reason:
        raise StudyError("Say why the reader is removed: the reason is part of the record.")
    if len(reason) > 500:
        raise StudyError("The reason is too long: at most 500 characters.")
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update().filter(pk=assignment_id, study_id=study.pk).first()
        )
        if assignment is None:
            raise StudyError("No such reader in this study.")
        if assignment.removed_at is not None:
            raise StudyError("This reader was removed already.")
        assignment.removed_at = timezone.now()
        assignment.save(update_fields=["removed_at"])
        study_event_record(
            study=study,
            kind=StudyEvent.Kind.READER_REMOVED,
            actor=actor,
            before={"reader": assignment.reader_id, "assignment": assignment.pk},
            after={
                "removed_at": assignment.removed_at.isoformat(),
                "reason": reason,
                "answers": Answer.objects.filter(assignment=assignment, label__isnull=False).count(),
            },
        )
    return assignment


def _amendment_if_beyond_plan(study: Study, assignment: Assignment, actor: UserLike | None) -> None:
    """A reader enrolled after the freeze beyond the planned readers changes the design the verdict was
    planned for: recorded as an amendment, which makes the verdict exploratory (`analysis.stats`)."""
    frozen = Study.objects.filter(pk=study.pk).values_list("frozen_at", "planned_readers").first()
    if frozen is None or frozen[0] is None:
        return
    enrolled = Assignment.objects.filter(study_id=study.pk, removed_at__isnull=True).count()
    if enrolled > frozen[1]:  # a replacement for a removed reader is within the plan
        study_event_record(
            study=study,
            kind=StudyEvent.Kind.AMENDMENT,
            actor=actor,
            before={"planned_readers": frozen[1]},
            after={"readers": enrolled, "assignment": assignment.pk},
        )


def study_invite(*, study: Study, reader: User, actor: UserLike | None = None) -> Assignment:
    """Give a reader their items in their own order (idempotent: a second invitation changes nothing)."""
    if not is_expert(reader):
        raise StudyError(f"{reader.get_username()} is not an expert: only experts read studies.")
    with transaction.atomic():
        existing = Assignment.objects.filter(study=study, reader=reader).first()
        if existing is not None:
            return existing
        assignment = Assignment.objects.create(study=study, reader=reader)
        if study.same_items_for_all:
            items = dict(study.items.values_list("id", "token"))
        else:
            plan = study_plan(spec_of(study))
            if not plan.ok:
                raise StudyError(" ".join(plan.problems))
            items = {item.pk: item.token for item in item_set_draw(study, assignment.seed, plan)}
        assignment.order = reader_order(study, items, assignment.seed)
        assignment.practice_order = order_draw(
            dict(study.practice.values_list("id", "token")), assignment.seed, 6
        )
        assignment.save(update_fields=["order", "practice_order"])
        ids = {token: pk for pk, token in items.items()}
        seen: set[str] = set()
        repeats = []
        for position, token in enumerate(assignment.order):
            if token in seen:  # a repeat read: its own token (`RepeatRead`)
                repeats.append(RepeatRead(assignment=assignment, item_id=ids[token], position=position))
            seen.add(token)
        RepeatRead.objects.bulk_create(repeats)
        study_event_record(
            study=study,
            kind=StudyEvent.Kind.READER_ADDED,
            actor=actor,
            after={"reader": reader.pk, "assignment": assignment.pk, "seed": assignment.seed},
        )
        _amendment_if_beyond_plan(study, assignment, actor)
    return assignment


def assignment_profile_set(
    *, assignment: Assignment, role: str, years: int, gi_subspecialty: bool, seen_synthetic: bool
) -> Assignment:
    """Store the reader's profile with their assignment. It may be given again until the first answer
    (each change recorded); after that, and once the study is closed, it is part of the record."""
    if not assignment.study.is_open:
        raise StudyError("This study is closed: the profile is part of its record now.")
    if Answer.objects.filter(assignment=assignment).exists():
        raise StudyError("Your first answer has been given: the profile stays as it was then.")
    if role not in ReaderRole.values:
        raise StudyError(f"Unknown role {role!r}: use one of {', '.join(ReaderRole.values)}.")
    if not 0 <= years <= 70:
        raise StudyError(f"Years in practice must be from 0 to 70, got {years}.")
    fields = ["profile_role", "profile_years", "profile_gi", "profile_seen_synthetic"]
    before = {name: getattr(assignment, name) for name in fields}
    given_before = assignment.profile_at is not None
    assignment.profile_role, assignment.profile_years = role, years
    assignment.profile_gi, assignment.profile_seen_synthetic = gi_subspecialty, seen_synthetic
    assignment.profile_at = timezone.now()
    with transaction.atomic():
        assignment.save(update_fields=[*fields, "profile_at"])
        profile_record(study_id=assignment.study_id, assignment_id=assignment.pk)
        after = {name: getattr(assignment, name) for name in fields}
        if given_before and after != before:
            study_event_record(
                study=assignment.study,
                kind=StudyEvent.Kind.PROFILE_CHANGED,
                actor=assignment.reader,
                before=before | {"assignment": assignment.pk},
                after=after,
            )
    return assignment


def assignment_order_audit(*, assignment: Assignment) -> bool:
    """Rebuild the reader's order from the stored seed and check it is the order they were given."""
    items = dict(
        StudyItem.objects.filter(study_id=assignment.study_id, token__in=assignment.order).values_list(
            "id", "token"
        )
    )
    return (
        len(items) == assignment.first_reads
        and reader_order(assignment.study, items, assignment.seed) == assignment.order
    )


def study_protocol_set(
    *, study: Study, equivalence_margin: float, alpha: float, actor: UserLike | None = None
) -> Study:
    """Change the verdict's rule of a study that has no answer yet; refused once one has arrived."""
    problems = protocol_problems(equivalence_margin=equivalence_margin, alpha=alpha)
    if problems:
        raise StudyError(" ".join(problems))
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if Answer.objects.filter(assignment__study=locked, label__isnull=False).exists():
            raise StudyError(
                "This study's protocol is frozen: its first answer has arrived, and the rule its verdict "
                "follows cannot change after that."
            )
        before = {"equivalence_margin": locked.equivalence_margin, "alpha": locked.alpha}
        locked.equivalence_margin, locked.alpha = equivalence_margin, alpha
        locked.save(update_fields=["equivalence_margin", "alpha"])
        after = {"equivalence_margin": equivalence_margin, "alpha": alpha}
        study_event_record(
            study=locked, kind=StudyEvent.Kind.PROTOCOL, actor=actor, before=before, after=after
        )
    study.equivalence_margin, study.alpha = equivalence_margin, alpha
    return study


def study_set_status(*, study: Study, status: str, actor: UserLike | None = None) -> Study:
    if status not in Study.Status.values:
        raise StudyError(f"Unknown status {status!r}.")
    with transaction.atomic():
        before = study.status
        study.status = status
        study.save(update_fields=["status"])
        if before != status:
            study_event_record(
                study=study,
                kind=StudyEvent.Kind.STATUS,
                actor=actor,
                before={"status": before},
                after={"status": status},
            )
    return study
