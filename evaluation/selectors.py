"""Reads of the evaluation app: a study's answers as statistics records and as CSV rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import CharField, Count, FloatField, Func, Q
from django.db.models.functions import Cast

from evaluation import stats
from turing.models import Answer, Assignment, Study


def reader_pseudonyms(*, study: Study) -> dict[int, str]:
    """Assignment id -> a stable pseudonymous reader id (R1, R2, ... in invitation order)."""
    ids = Assignment.objects.filter(study=study).order_by("id").values_list("id", flat=True)
    return {assignment_id: f"R{index}" for index, assignment_id in enumerate(ids, start=1)}


def study_records(*, study: Study) -> list[stats.Record]:
    names = reader_pseudonyms(study=study)
    rows = (
        Answer.objects.filter(assignment__study=study, label__isnull=False)
        .values_list(
            "assignment_id", "item__token", "item__truth", "label", "confidence", "item__patch__tissue_class"
        )
        .order_by("assignment_id", "position")
    )
    # label is never NULL here (filtered above); str() narrows the type for the checker.
    return [
        stats.Record(names[a], token, truth, str(label), conf, cls)
        for a, token, truth, label, conf, cls in rows
    ]


def study_statistics(*, study: Study) -> stats.StudyStatistics:
    return stats.study_statistics(study_records(study=study), margin=settings.EQUIVALENCE_MARGIN)


def studies_with_answers() -> list[Study]:
    return list(
        Study.objects.annotate(
            n_answers=Count("assignments__answers", filter=Q(assignments__answers__label__isnull=False)),
            n_readers=Count("assignments", distinct=True),
        ).order_by("-created_at")
    )


TIDY_COLUMNS = [
    "study",
    "reader",
    "position",
    "item_token",
    "patch_id",
    "truth",
    "tissue_class",
    "sampling_run",
    "checkpoint_step",
    "seed",
    "label",
    "confidence",
    "shown_at",
    "answered_at",
    "seconds_taken",
]


def _item_columns(study: Study) -> dict[int, list[Any]]:
    """Item id -> its columns of the tidy export, read once per study instead of once per answer."""
    rows = study.items.values_list(
        "id",
        "token",
        "patch_id",
        "truth",
        "patch__tissue_class",
        "patch__sampling_run_id",
        "patch__sampling_run__checkpoint__step",
        "patch__seed",
    )
    return {item_id: list(rest) for item_id, *rest in rows}


class SecondsBetween(Func):
    """Seconds from the first timestamp to the second, computed by the database."""

    output_field = FloatField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))", arg_joiner=" - "
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "((julianday(%(expressions)s)) * 86400.0)"
        return self.as_sql(compiler, connection, template=template, arg_joiner=") - julianday(")


def _iso(text: str) -> str:
    """A timestamp as the database writes it ('2026-11-29 04:31:16.12+00') in ISO 8601 UTC form."""
    text = text.replace(" ", "T", 1)
    if text.endswith("+00"):
        return text + ":00"
    return text if text.endswith(("+00:00", "Z")) else text + "+00:00"


def tidy_answer_rows(*, study: Study, names: bool = False, chunk_size: int = 10_000) -> Iterator[list[Any]]:
    """One row per answer, streamed from the database in chunks (constant memory).

    Timestamps come from the database as text and the seconds taken as a number: building 500,000
    Python datetimes would cost more than everything else in the export together.
    """
    readers = (
        dict(Assignment.objects.filter(study=study).values_list("id", "reader__username"))
        if names
        else reader_pseudonyms(study=study)
    )
    items = _item_columns(study)
    rows = (
        Answer.objects.filter(assignment__study=study, label__isnull=False)
        .order_by("assignment_id", "position")
        .annotate(
            shown=Cast("shown_at", CharField()),
            answered=Cast("answered_at", CharField()),
            seconds=SecondsBetween("answered_at", "shown_at"),
        )
        .values_list(
            "assignment_id", "position", "item_id", "label", "confidence", "shown", "answered", "seconds"
        )
        .iterator(chunk_size=chunk_size)
    )
    name = study.name
    for assignment_id, position, item_id, label, confidence, shown, answered, seconds in rows:
        yield [
            name,
            readers[assignment_id],
            position + 1,
            *items[item_id],
            label,
            confidence,
            _iso(shown),
            _iso(answered),
            f"{seconds:.3f}",
        ]


def imrmc_rows(*, study: Study, chunk_size: int = 5000) -> Iterator[list[Any]]:
    """iMRMC's long format: truth rows (readerID -1), then one score per reader and case.

    The score is the reader's rating that the case is synthetic: +confidence for 'synthetic',
    -confidence for 'real' (+1 / -1 when no confidence was asked).
    """
    modality = "human"
    yield ["readerID", "caseID", "modalityID", "score"]
    for token, truth in (
        study.items.order_by("id").values_list("token", "truth").iterator(chunk_size=chunk_size)
    ):
        yield [-1, token, "truth", 1 if truth == stats.SYNTHETIC else 0]
    pseudonyms = reader_pseudonyms(study=study)
    rows = (
        Answer.objects.filter(assignment__study=study, label__isnull=False)
        .order_by("assignment_id", "position")
        .values_list("assignment_id", "item__token", "label", "confidence")
        .iterator(chunk_size=chunk_size)
    )
    for assignment_id, token, label, confidence in rows:
        sign = 1 if label == stats.SYNTHETIC else -1
        yield [pseudonyms[assignment_id], token, modality, sign * (confidence or 1)]


def summary_rows(*, result: stats.StudyStatistics) -> Iterator[list[Any]]:
    yield [
        "scope",
        "measure",
        "successes",
        "n",
        "share",
        "p_value",
        "cp_low",
        "cp_high",
        "wilson_low",
        "wilson_high",
        "value",
        "note",
    ]

    def prop_row(scope: str, measure: str, p: stats.Proportion) -> list[Any]:
        cp = p.clopper_pearson or ("", "")
        wilson = p.wilson or ("", "")
        return [scope, measure, p.successes, p.n, p.share, p.p_value, *cp, *wilson, "", p.reason]

    scopes = [("pooled", result.pooled)] + [(f"reader {r}", a) for r, a in result.per_reader.items()]
    scopes += [(f"class {c}", a) for c, a in result.per_class.items()]
    for scope, acc in scopes:
        yield prop_row(scope, "real called real", acc.real)
        yield prop_row(scope, "synthetic called synthetic", acc.synthetic)
        yield prop_row(scope, "overall accuracy", acc.overall)
    blank = [""] * 8
    yield [
        "pooled",
        "Fleiss kappa",
        "",
        result.fleiss.n_items,
        *blank[:6],
        result.fleiss.value,
        result.fleiss.reason,
    ]
    for (a, b), kappa in result.cohen.items():
        yield [f"readers {a} & {b}", "Cohen kappa", "", kappa.n_items, *blank[:6], kappa.value, kappa.reason]
    c = result.clustered
    yield [
        "GEE (reader clusters)",
        "real called real",
        "",
        "",
        c.real,
        "",
        *(c.real_ci or ("", "")),
        "",
        "",
        "",
        c.reason,
    ]
    yield [
        "GEE (reader clusters)",
        "synthetic called synthetic",
        "",
        "",
        c.synthetic,
        "",
        *(c.synthetic_ci or ("", "")),
        "",
        "",
        "",
        c.reason,
    ]
    eq = result.equivalence_overall
    yield [
        "pooled",
        f"TOST within {eq.margin:.2f} of chance",
        "",
        "",
        eq.share,
        eq.p_value,
        "",
        "",
        "",
        "",
        eq.equivalent,
        eq.reason,
    ]
    for reader, auc in result.auc.items():
        yield [
            f"reader {reader}",
            "ROC AUC (label x confidence)",
            "",
            auc.n,
            "",
            "",
            "",
            "",
            "",
            "",
            auc.value,
            auc.reason,
        ]


def augmentation_rows(*, experiment: Any) -> Iterator[list[Any]]:
    yield [
        "arm",
        "synthetic_added",
        "n_train",
        "measure",
        "mean",
        "ci_low",
        "ci_high",
        "per_seed",
        "mcnemar_p_vs_baseline",
    ]
    for arm in experiment.results.get("arms", []):
        test = arm.get("mcnemar_vs_baseline") or {}
        for measure in ("accuracy", "macro_f1", "recall_c"):
            figure = arm[measure]
            low, high = figure["ci95"] or ("", "")
            yield [
                arm["arm"],
                arm["amount"] or 0,
                arm["n_train"],
                measure,
                figure["mean"],
                low,
                high,
                " ".join(f"{v:.4f}" for v in figure["per_seed"]),
                test.get("p_value", ""),
            ]
