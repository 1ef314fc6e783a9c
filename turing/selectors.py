from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q, Sum
from django.http import Http404
from django.utils import timezone
from django.utils.formats import date_format

from analysis import chain, planning, stats
from turing.models import (
    Answer,
    Assignment,
    PracticeAnswer,
    PracticeItem,
    RecordEntry,
    RepeatRead,
    Study,
    StudyItem,
    StudyItemImage,
)


def reader_pseudonyms(*, study: Study) -> dict[int, str]:
    """Assignment id -> a stable pseudonymous reader id (R1, R2, ... in invitation order)."""
    ids = Assignment.objects.filter(study=study).order_by("id").values_list("id", flat=True)
    return {assignment_id: f"R{index}" for index, assignment_id in enumerate(ids, start=1)}


def reader_previous_profile(*, assignment: Assignment) -> Assignment | None:
    """The reader's latest profile given in another study, to offer instead of four blank questions."""
    return (
        Assignment.objects.select_related("study")
        .filter(reader_id=assignment.reader_id, profile_at__isnull=False)
        .exclude(pk=assignment.pk)
        .order_by("-profile_at")
        .first()
    )


def assignment_for_reader(*, study_id: Any, user: Any) -> Assignment:
    """The user's assignment in a study, or 404: another reader's study does not even exist for them."""
    assignment = (
        Assignment.objects.select_related("study")
        .filter(study_id=study_id, reader_id=user.pk, removed_at__isnull=True)
        .first()
        if user.is_authenticated
        else None
    )
    if assignment is None:
        raise Http404("No such study.")
    return assignment


def served_tokens(*, assignment: Assignment) -> list[str]:
    """The tokens a reader is served, in their order: an item's own token for its first read, the
    repeat's own token (`RepeatRead`) for its second. One query, and only for an order with repeats."""
    order = list(assignment.order)
    if len(set(order)) == len(order):
        return order
    for position, token in RepeatRead.objects.filter(assignment_id=assignment.pk).values_list(
        "position", "token"
    ):
        order[position] = token
    return order


def answered_item(*, assignment: Assignment, position: int) -> dict[str, Any] | None:
    """The reader's own answer at `position` of their order (for Back), or None when not answered yet,
    or when it is a first read whose repeat has since been shown (that answer is final)."""
    if not 0 <= position < assignment.total:
        return None
    row = (
        Answer.objects.filter(assignment=assignment, position=position, label__isnull=False)
        .values_list("label", "confidence", "item_id", "read")
        .first()
    )
    if row is None:
        return None
    label, confidence, item_id, read = row
    if read == 1 and Answer.objects.filter(assignment=assignment, item_id=item_id, read=2).exists():
        return None
    token = served_tokens(assignment=assignment)[position]
    return {"token": token, "label": label, "confidence": confidence}


def personal_result(*, assignment: Assignment) -> dict[str, Any] | None:
    """A reader's own accuracy and ROC AUC beside the group's, for their end page: only once the study is
    closed and only where its manager turned it on (so it can never hint at the truth while reading)."""
    study = assignment.study
    if study.is_open or not study.show_personal_result or study.allow_changes:
        return None  # changes allowed: a reopen would let the reader mend what their result showed
    rows = Answer.objects.filter(assignment__study=study, label__isnull=False, read=1).values_list(
        "assignment_id", "item__token", "item__truth", "label", "confidence"
    )
    records = [stats.Record(str(a), token, truth, str(label), conf) for a, token, truth, label, conf in rows]
    mine = [r for r in records if r.reader == str(assignment.pk)]
    if not mine:
        return None
    readers = sorted({r.reader for r in records})
    accuracy = {
        reader: sum(r.correct for r in records if r.reader == reader)
        / sum(1 for r in records if r.reader == reader)
        for reader in readers
    }
    analysis = stats.turing_mrmc(records, cases=list(study.items.values_list("token", flat=True)))
    aucs = dict(zip(analysis.result.readers, analysis.result.auc[0], strict=True)) if analysis.result else {}
    ordered = sorted(accuracy.values())
    return {
        "accuracy": accuracy[str(assignment.pk)],
        "group_median_accuracy": float(np.median(ordered)),
        "group_range": (ordered[0], ordered[-1]),
        "auc": aucs.get(str(assignment.pk)),
        "group_median_auc": float(np.median(list(aucs.values()))) if aucs else None,
        "readers": len(readers),
    }


def assignment_answered_count(*, assignment: Assignment) -> int:
    return Answer.objects.filter(assignment=assignment, label__isnull=False).count()


@dataclass(frozen=True)
class ReaderItem:
    assignment_id: int
    item_id: int


def item_for_reader(*, token: str, user: Any) -> ReaderItem:
    """An item whose image this user may see (one in their own order), or 404.

    The same queries and the same work for every item of the reader's order: nothing here depends on
    the item's content or truth.
    """
    if not user.is_authenticated:
        raise Http404("No such image.")
    item = StudyItem.objects.filter(token=token).values_list("pk", "study_id").first()
    if item is None:
        return _repeat_for_reader(token=token, user=user)
    assignment = (
        Assignment.objects.filter(study_id=item[1], reader_id=user.pk, removed_at__isnull=True)
        .values_list("pk", "order")
        .first()
    )
    if assignment is None or token not in assignment[1]:
        raise Http404("No such image.")
    # Once its repeat has been shown, a first read's URL is closed: the repeat has its own.
    if Answer.objects.filter(assignment_id=assignment[0], item_id=item[0], read=2).exists():
        raise Http404("No such image.")
    return ReaderItem(assignment_id=assignment[0], item_id=item[0])


def _repeat_for_reader(*, token: str, user: Any) -> ReaderItem:
    """A repeat read's image, by its own token (`RepeatRead`), for its own reader only."""
    repeat = (
        RepeatRead.objects.filter(
            token=token, assignment__reader_id=user.pk, assignment__removed_at__isnull=True
        )
        .values_list("assignment_id", "item_id")
        .first()
    )
    if repeat is None:
        raise Http404("No such image.")
    return ReaderItem(assignment_id=repeat[0], item_id=repeat[1])


def item_image_bytes(*, item_id: int) -> bytes:
    """The stored blinded bytes of an item (one fixed-size read; see `StudyItemImage`)."""
    return bytes(StudyItemImage.objects.values_list("png", flat=True).get(item_id=item_id))


def studies_for_reader(*, user: Any) -> list[dict[str, Any]]:
    rows = []
    assignments = (
        Assignment.objects.select_related("study")
        .filter(reader_id=user.pk)
        .annotate(answered=Count("answers", filter=Q(answers__label__isnull=False)))
    )
    for assignment in assignments:
        rows.append({"study": assignment.study, "assignment": assignment, "answered": assignment.answered})
    return rows


def study_progress(*, study: Study) -> list[dict[str, Any]]:
    """Per reader, under their stable pseudonym: answered of total, last answer, finished, and the time
    spent on the answered patches (from first shown to answered, pauses included)."""
    pseudonyms = reader_pseudonyms(study=study)
    spent = ExpressionWrapper(
        F("answers__answered_at") - F("answers__shown_at"), output_field=DurationField()
    )
    answered = Q(answers__label__isnull=False)
    assignments = (
        Assignment.objects.filter(study=study)
        .select_related("reader")
        .annotate(
            answered=Count("answers", filter=answered),
            last_answer=Max("answers__answered_at"),
            time_spent=Sum(spent, filter=answered),
        )
        .order_by("id")
    )
    return [
        {
            "pseudonym": pseudonyms[a.pk],
            "reader": a.reader,
            "answered": a.answered,
            "total": a.total,
            "last_answer": a.last_answer,
            "finished_at": a.finished_at,
            "time_spent_s": a.time_spent.total_seconds() if a.time_spent is not None else 0.0,
            "last_answer_text": _when(a.last_answer),
            "time_text": _minutes(a.time_spent.total_seconds() if a.time_spent is not None else 0.0),
            "assignment_id": a.pk,
            "removed_at": a.removed_at,
        }
        for a in assignments
    ]


def _when(moment: Any) -> str:
    """A time as the study page writes every time (the site's zone, to the minute): the live table's
    updates read as the rows rendered with the page and as the invitations beside them."""
    return date_format(timezone.localtime(moment), "Y-m-d H:i") if moment is not None else "—"


def _minutes(seconds: float) -> str:
    if seconds <= 0:
        return "0 min"
    return "under 1 min" if seconds < 60 else f"{round(seconds / 60):,} min"


def study_live_status(*, study: Study) -> dict[str, Any]:
    """What the study page polls: its status and each reader's progress (for study managers only)."""
    rows = study_progress(study=study)
    return {
        "status": study.status,
        "answers": sum(row["answered"] for row in rows),
        "readers": [
            {
                "pseudonym": row["pseudonym"],
                "username": row["reader"].get_username(),
                "answered": row["answered"],
                "total": row["total"],
                "last_answer": row["last_answer"].isoformat() if row["last_answer"] else None,
                "finished": row["finished_at"] is not None,
                "minutes": round(row["time_spent_s"] / 60, 1),
                "last_answer_text": row["last_answer_text"],
                "time_text": row["time_text"],
            }
            for row in rows
        ],
    }


def study_counts(*, study: Study) -> dict[str, int]:
    counts = dict(study.items.values_list("truth").annotate(n=Count("id")).values_list("truth", "n"))
    return {
        "items": sum(counts.values()),
        "real": counts.get("real", 0),
        "synthetic": counts.get("synthetic", 0),
        "readers": study.assignments.count(),
        "answers": Answer.objects.filter(assignment__study=study, label__isnull=False).count(),
    }


def studies_overview() -> list[Study]:
    """Every study with its readers and its answers so far, of all the answers it expects."""
    studies = Study.objects.annotate(
        readers=Count("assignments", distinct=True),
        answered=Count("assignments__answers", filter=Q(assignments__answers__label__isnull=False)),
    ).order_by("-created_at")
    return list(studies)


def reader_study_count(*, user_id: int | None) -> int:
    """How many studies a user is invited to read (one query)."""
    return Assignment.objects.filter(reader_id=user_id).count()


def pilot_candidates(*, most: int = 20) -> list[tuple[int, str]]:
    """Studies that can serve as a pilot for sample-size planning, newest first: one common item set
    and two or more finished readers (one cheap query; the analysis runs for the chosen one only)."""
    rows = (
        Study.objects.filter(same_items_for_all=True)
        .annotate(finished=Count("assignments", filter=Q(assignments__finished_at__isnull=False)))
        .filter(finished__gte=2)
        .order_by("-created_at")
        .values_list("pk", "name", "finished", "real_parts", "synthetic_parts")[:most]
    )
    return [
        (pk, f"{name} ({finished} finished readers, {real}:{synthetic} real:synthetic)")
        for pk, name, finished, real, synthetic in rows
    ]


def planning_pilot(*, study_id: int | None) -> planning.Pilot | None:
    """The variance components of a finished study for planning the next one, described so that a
    manager can judge whether it fits (its AUC and its ratio: a pilot far from AUC 0.5 plans an
    equivalence study poorly); None without a choice or an analysis (the literature's values)."""
    study = Study.objects.filter(pk=study_id, same_items_for_all=True).first() if study_id else None
    if study is None:
        return None
    rows = Answer.objects.filter(
        assignment__study=study, assignment__finished_at__isnull=False, label__isnull=False, read=1
    ).values_list("assignment_id", "item__token", "item__truth", "label", "confidence")
    records = [stats.Record(str(a), token, truth, str(label), conf) for a, token, truth, label, conf in rows]
    analysis = stats.turing_mrmc(records, cases=list(study.items.values_list("token", flat=True)))
    if analysis.result is None or analysis.result.single[0].rrrc is None:
        return None
    result = analysis.result
    n_pos, n_neg = result.n_positive[0], result.n_negative[0]
    source = (
        f"the study '{study.name}' ({len(analysis.readers)} readers x {analysis.n_cases} items, "
        f"{n_neg}:{n_pos} real:synthetic, mean AUC {result.auc_mean[0]:.2f})"
    )
    return planning.pilot_from(result.single[0], analysis.n_cases, source, n_pos / (n_pos + n_neg))


def study_readers_part_way(*, study: Study) -> list[dict[str, Any]]:
    """Readers who have started but not finished: what closing the study does to them."""
    return [row for row in study_progress(study=study) if 0 < row["answered"] < row["total"]]


def study_copy_initial(*, study_id: int) -> dict[str, Any] | None:
    """The builder's fields filled from a study (settings, pools, readers); a new seed is drawn."""
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return None
    arms: dict[str, Any] = {}
    for k, arm in enumerate(study.arms.prefetch_related("datasets")[:3], start=1):
        datasets, parts = (
            ("synthetic_datasets", "synthetic_parts") if k == 1 else (f"arm{k}_datasets", f"arm{k}_parts")
        )
        arms |= {
            f"arm{k}_name": arm.name,
            datasets: [d.pk for d in arm.datasets.all()],
            parts: arm.parts,
        }
    return {
        "name": f"{study.name} (copy)",
        "tissue_class": study.tissue_class,
        "real_datasets": list(study.real_datasets.values_list("pk", flat=True)),
        **arms,
        "items_per_reader": study.items_per_reader,
        "real_parts": study.real_parts,
        "harmonise_jpeg_quality": study.harmonise_jpeg_quality,
        "equal_transforms": study.equal_transforms,
        "stain_normalisation": bool(study.stain_target),
        "too_fast_ms": study.too_fast_ms,
        "ask_profile": study.ask_profile,
        "ask_reasons": study.ask_reasons,
        "show_personal_result": study.show_personal_result,
        "reasons": ", ".join(study.reasons),
        "same_items_for_all": study.same_items_for_all,
        "allow_changes": study.allow_changes,
        "ask_confidence": study.ask_confidence,
        "instructions": study.instructions,
        "practice_items": study.practice_items,
        "practice_datasets": list(study.practice_datasets.values_list("pk", flat=True)),
        "repeat_share": study.repeat_share,
        "repeat_gap": study.repeat_gap,
        "repeat_washout_days": study.repeat_washout_days,
        "equivalence_margin": study.equivalence_margin,
        "alpha": study.alpha,
        "readers": list(study.assignments.values_list("reader_id", flat=True)),
        "copied_from": study.name,  # not a field: for the page's notice
    }


def study_invitations(*, study: Study) -> list[dict[str, Any]]:
    """The study's e-mailed invitations with their state (waiting, used, expired, revoked) and whether
    their reader may be reminded (enrolled, not removed, not finished)."""
    now = timezone.now()
    unfinished = set(
        Assignment.objects.filter(study=study, finished_at__isnull=True, removed_at__isnull=True).values_list(
            "reader_id", flat=True
        )
    )
    return [
        {
            "invitation": i,
            "state": i.state(now),
            "remindable": i.revoked_at is None and i.reader_id in unfinished,
        }
        for i in study.invitations.order_by("email")
    ]


def practice_score(*, assignment: Assignment) -> tuple[int, int]:
    """(answered, right) of the reader's practice patches."""
    answers = PracticeAnswer.objects.filter(assignment=assignment).values_list("label", "item__truth")
    return len(answers), sum(label == truth for label, truth in answers)


def practice_pending(*, assignment: Assignment) -> bool:
    """The reader has practice patches left (a study's practice comes before its first test patch)."""
    return PracticeAnswer.objects.filter(assignment=assignment).count() < len(assignment.practice_order)


def practice_image_bytes(*, token: str, user: Any) -> bytes:
    """A practice patch's stored blinded bytes, for a reader it was given to; else 404."""
    row = (
        PracticeItem.objects.filter(token=token).values_list("study_id", "png").first()
        if user.is_authenticated
        else None
    )
    order = (
        Assignment.objects.filter(study_id=row[0], reader_id=user.pk)
        .values_list("practice_order", flat=True)
        .first()
        if row is not None
        else None
    )
    if row is None or order is None or token not in order:
        raise Http404("No such image.")
    return bytes(row[1])


def study_record_head(*, study_id: int) -> str:
    """The head of the study's record (`analysis.chain.record_head`): the one hash that every export, the
    report and the archive carry, and that changes with every entry."""
    heads: dict[str, tuple[int, str]] = {}
    rows = RecordEntry.objects.filter(study_id=study_id).order_by("chain", "seq")
    for name, seq, entry_hash in rows.values_list("chain", "seq", "hash"):
        heads[name] = (seq + 1, entry_hash)
    return chain.record_head(heads)
