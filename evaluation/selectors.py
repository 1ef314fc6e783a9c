"""Reads of the evaluation app: a study's answers as statistics records, and the report's tables."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from analysis import agreement, arms, report, stats
from core.models import Job
from evaluation.models import AugmentationExperiment, Classifier, CopyingCheck
from gan.models import Dataset
from turing.models import Answer, Assignment, Study, StudyArm, StudyEvent
from turing.selectors import reader_pseudonyms


def study_records(*, study: Study) -> list[stats.Record]:
    names = reader_pseudonyms(study=study)
    rows = (
        # Removed readers' answers stay in the exports and out of every statistic.
        Answer.objects.filter(
            assignment__study=study, label__isnull=False, read=1, assignment__removed_at__isnull=True
        )
        .values_list(
            "assignment_id",
            "item__token",
            "item__truth",
            "label",
            "confidence",
            "item__patch__tissue_class",
            "item__arm__name",
            "visible_ms",
        )
        .order_by("assignment_id", "position")
    )
    # label is never NULL here (filtered above); str() narrows the type for the checker.
    return [
        stats.Record(names[a], token, truth, str(label), conf, cls, arm or "", visible)
        for a, token, truth, label, conf, cls, arm, visible in rows
    ]


def verdict_protocol(*, study: Study) -> stats.Protocol:
    """The rule the study's verdict follows, as stored with the study (never a server setting)."""
    # Read from the row: the plan is completed at the freeze (`study_freeze`), which a `study` loaded
    # before the first answer has not seen.
    planned = Study.objects.filter(pk=study.pk).values_list("planned_readers", flat=True).first() or 0
    return stats.Protocol(
        margin=study.equivalence_margin,
        alpha=study.alpha,
        planned_readers=planned,
        planned_items=study.items_per_reader,
        amended=study.events.filter(kind=StudyEvent.Kind.AMENDMENT).exists(),
    )


def study_figures(*, study: Study, records: list[stats.Record] | None = None) -> report.StudyStatistics:
    """Every figure of the study's report. The MRMC analysis takes the study's items as its cases
    (every reader reads them all); a study that drew items per reader has no common case set."""
    records = study_records(study=study) if records is None else records
    protocol = verdict_protocol(study=study)
    if not study.same_items_for_all:
        reason = (
            "this study drew different items for each reader, and the OR analysis needs every reader to "
            "read the same cases"
        )
        result = report.study_statistics(records, protocol=protocol, unavailable=reason)
        cases = None
    else:
        cases = list(study.items.values_list("token", flat=True))
        result = report.study_statistics(records, protocol=protocol, cases=cases)
        reason = ""
    names = list(study.arms.values_list("name", flat=True))
    if len(names) > 1:
        result.arms = arms.arm_analysis(
            records, arms=names, cases=cases, protocol=protocol, unavailable=reason
        )
    result.notes += removed_reader_notes(study=study)
    return result


def removed_reader_notes(*, study: Study) -> list[str]:
    """A sentence per reader a manager removed: when, why, and that their answers are left out."""
    pseudonyms = reader_pseudonyms(study=study)
    removed = Assignment.objects.filter(study=study, removed_at__isnull=False).order_by("removed_at")
    reasons = {
        e.before.get("assignment"): e.after.get("reason", "")
        for e in study.events.filter(kind=StudyEvent.Kind.READER_REMOVED)
    }
    return [
        f"{pseudonyms[a.pk]} was removed on {a.removed_at:%Y-%m-%d} "
        f"({reasons.get(a.pk) or 'no reason given'}): their answers are in the exports and left out of "
        "every figure here."
        for a in removed
    ]


def arm_gallery(*, arm: StudyArm) -> list[dict[str, Any]]:
    """An arm's synthetic items with how often readers called each real, the most convincing first."""
    rows = (
        Answer.objects.filter(item__arm=arm, label__isnull=False, read=1)
        .values("item_id", "item__patch_id")
        .annotate(n=Count("id"), called_real=Count("id", filter=Q(label=stats.REAL)))
        .order_by()
    )
    answered = {row["item_id"]: row for row in rows}
    gallery = []
    for item_id, patch_id in arm.items.order_by("id").values_list("id", "patch_id"):
        row = answered.get(item_id, {"n": 0, "called_real": 0})
        fool = row["called_real"] / row["n"] if row["n"] else None
        gallery.append(
            {"patch_id": patch_id, "n": row["n"], "called_real": row["called_real"], "fool_rate": fool}
        )
    gallery.sort(key=lambda g: (g["fool_rate"] is None, -(g["fool_rate"] or 0.0), g["patch_id"]))
    return gallery


def study_copying(*, study: Study) -> list[dict[str, Any]]:
    """For each synthetic set of the study: its newest finished copying check, and how many of the
    study's items it flags as near-copies (in any feature space)."""
    item_patches = set(study.items.filter(truth=stats.SYNTHETIC).values_list("patch_id", flat=True))
    rows = []
    for dataset in study.synthetic_datasets.order_by("name"):
        check = (
            CopyingCheck.objects.filter(synthetic_dataset=dataset, job__state=Job.State.FINISHED)
            .order_by("-job__created_at")
            .first()
        )
        flagged: set[int] = set()
        for space in (check.results.get("spaces", {}) if check else {}).values():
            flagged |= set(space.get("flagged_ids", []))
        rows.append({"dataset": dataset, "check": check, "flagged_items": len(flagged & item_patches)})
    return rows


def reason_rows(*, study: Study) -> list[dict[str, Any]]:
    """How often each of the study's reasons was ticked after a "synthetic" answer, by the patch's truth
    (a reason ticked on real patches called synthetic is a reason that misleads)."""
    counts: dict[tuple[str, str], int] = {}
    answers = Answer.objects.filter(assignment__study=study, label=stats.SYNTHETIC, read=1).values_list(
        "item__truth", "reasons"
    )
    for truth, reasons in answers:
        for reason in reasons or []:
            counts[(reason, truth)] = counts.get((reason, truth), 0) + 1
    return [
        {
            "reason": reason,
            "on_synthetic": counts.get((reason, stats.SYNTHETIC), 0),
            "on_real": counts.get((reason, stats.REAL), 0),
        }
        for reason in study.reasons
    ]


def repeat_read_pairs(*, study: Study) -> list[agreement.ReadPair]:
    """Every item a reader answered twice (`Study.repeat_share`): its first and second labels."""
    names = reader_pseudonyms(study=study)
    reads: dict[tuple[int, int], dict[int, str]] = {}
    rows = Answer.objects.filter(assignment__study=study, label__isnull=False).values_list(
        "assignment_id", "item_id", "read", "label"
    )
    for assignment_id, item_id, read, label in rows:
        reads.setdefault((assignment_id, item_id), {})[read] = str(label)
    return [
        agreement.ReadPair(names[a], str(item), labels[1], labels[2])
        for (a, item), labels in sorted(reads.items())
        if 1 in labels and 2 in labels
    ]


def study_within_reader(*, study: Study) -> agreement.WithinReader | None:
    """The within-reader agreement of a study with repeat reads (None for a study without)."""
    return agreement.within_reader(repeat_read_pairs(study=study)) if study.repeat_share else None


def study_clicks(*, study: Study) -> list[tuple[float, float]]:
    rows = Answer.objects.filter(
        assignment__study=study, click_x__isnull=False, click_y__isnull=False, read=1
    )
    return [(float(x or 0.0), float(y or 0.0)) for x, y in rows.values_list("click_x", "click_y")]


def classifier_for(*, dataset: Dataset, tissue_class: str) -> Classifier | None:
    """The newest finished classifier trained on `dataset` that knows `tissue_class`, or None."""
    finished = Classifier.objects.filter(dataset=dataset, job__state=Job.State.FINISHED).exclude(weights="")
    for classifier in finished:
        if tissue_class in classifier.config.get("classes", []):
            return classifier
    return None


def copying_checks(*, limit: int = 50) -> list[CopyingCheck]:
    """The newest copying checks, for their list page."""
    return list(CopyingCheck.objects.select_related("synthetic_dataset", "reference_dataset", "job")[:limit])


def augmentation_experiments(*, limit: int = 50) -> list[AugmentationExperiment]:
    """The newest augmentation experiments, for their list page."""
    return list(AugmentationExperiment.objects.select_related("job", "train_dataset", "test_dataset")[:limit])


def studies_with_answers() -> list[Study]:
    return list(
        Study.objects.annotate(
            n_answers=Count("assignments__answers", filter=Q(assignments__answers__label__isnull=False)),
            n_readers=Count("assignments", distinct=True),
        ).order_by("-created_at")
    )


def yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


YEARS_BANDS = ((0, 4, "under 5 years"), (5, 14, "5 to 14 years"), (15, 70, "15 years or more"))


def experience_rows(*, study: Study, result: report.StudyStatistics) -> list[dict[str, Any]]:
    """Results by experience group: for each group of readers by their profile (role, years in practice,
    GI subspecialty, synthetic images seen before), the readers, their pooled accuracy and their mean
    ROC AUC (from the MRMC analysis, for those in it). Groups are descriptive: no test between them."""
    names = reader_pseudonyms(study=study)
    assignments = list(Assignment.objects.filter(study=study, profile_at__isnull=False))
    aucs = {}
    if result.mrmc.result is not None:
        aucs = dict(zip(result.mrmc.result.readers, result.mrmc.result.auc[0], strict=True))
    groupings: list[tuple[str, Any]] = [
        ("role", lambda a: a.get_profile_role_display()),
        ("years in practice", lambda a: next(n for lo, hi, n in YEARS_BANDS if lo <= a.profile_years <= hi)),
        ("GI subspecialty", lambda a: yes_no(a.profile_gi)),
        ("seen synthetic images before", lambda a: yes_no(a.profile_seen_synthetic)),
    ]
    rows = []
    for grouping, key in groupings:
        groups: dict[str, list[str]] = {}
        for assignment in assignments:
            groups.setdefault(key(assignment), []).append(names[assignment.pk])
        for group, readers in sorted(groups.items()):
            accuracy = [result.per_reader[r].overall for r in readers if r in result.per_reader]
            successes, n = sum(p.successes for p in accuracy), sum(p.n for p in accuracy)
            in_mrmc = [aucs[r] for r in readers if r in aucs]
            rows.append(
                {
                    "grouping": grouping,
                    "group": group,
                    "readers": sorted(readers),
                    "accuracy": stats.proportion_summary(successes, n),
                    "mean_auc": sum(in_mrmc) / len(in_mrmc) if in_mrmc else None,
                    "n_auc": len(in_mrmc),
                }
            )
    return rows
