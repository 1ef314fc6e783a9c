"""The CSV exports of a study: tidy answers, the summary, the MRMC table, the ratings file, iMRMC's
long format, the audit trail and the augmentation results, each as rows streamed in constant memory."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField, FloatField, Func
from django.db.models.functions import Cast
from django.utils.text import slugify

from analysis import agreement, arms, report, stats
from evaluation.csv_export import csv_dict_lines, csv_lines
from evaluation.selectors import study_figures, study_within_reader, yes_no
from turing.models import Answer, Assignment, Study
from turing.selectors import reader_pseudonyms, study_record_head

TIDY_COLUMNS = [
    "study",
    "reader",
    "reader_role",
    "reader_years",
    "reader_gi_subspecialty",
    "reader_seen_synthetic",
    "position",
    "read",
    "item_token",
    "patch_id",
    "truth",
    "arm",
    "tissue_class",
    "sampling_run",
    "checkpoint_step",
    "seed",
    "label",
    "confidence",
    "shown_at",
    "answered_at",
    "seconds_taken",
    "visible_seconds",
    "too_fast",
    "reasons",
    "click_x",
    "click_y",
    # Where each patch came from, so that a file or a checkpoint that fooled readers can be found.
    "dataset",
    "source_file",
    "generator",
    "checkpoint_sha256",
]


def _item_columns(study: Study) -> dict[int, list[Any]]:
    """Item id -> its columns of the tidy export, read once per study instead of once per answer."""
    rows = study.items.values_list(
        "id",
        "token",
        "patch_id",
        "truth",
        "arm__name",
        "patch__tissue_class",
        "patch__sampling_run_id",
        "patch__sampling_run__checkpoint__step",
        "patch__seed",
    )
    return {
        item_id: [token, patch, truth, arm or "", *rest] for item_id, token, patch, truth, arm, *rest in rows
    }


def _source_columns(study: Study) -> dict[int, list[Any]]:
    """Item id -> where its patch came from: dataset, original file, generator and checkpoint hash."""
    rows = study.items.values_list(
        "id", "patch__dataset__name", "patch__original_name", "patch__dataset__provenance"
    )
    out = {}
    for item_id, dataset, original, provenance in rows:
        generator = (provenance or {}).get("generator") or {}
        out[item_id] = [dataset, original, generator.get("name", ""), generator.get("checkpoint_sha256", "")]
    return out


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
    sources = _source_columns(study)
    profiles = {a.pk: _profile_columns(a) for a in Assignment.objects.filter(study=study)}
    rows = (
        Answer.objects.filter(assignment__study=study, label__isnull=False)
        .order_by("assignment_id", "position")
        .annotate(
            shown=Cast("shown_at", CharField()),
            answered=Cast("answered_at", CharField()),
            seconds=SecondsBetween("answered_at", "shown_at"),
        )
        .values_list(
            "assignment_id",
            "position",
            "read",
            "item_id",
            "label",
            "confidence",
            "shown",
            "answered",
            "seconds",
            "visible_ms",
            "reasons",
            "click_x",
            "click_y",
        )
        .iterator(chunk_size=chunk_size)
    )
    name, too_fast = study.name, study.too_fast_ms
    for (
        assignment_id,
        position,
        read,
        item_id,
        label,
        confidence,
        shown,
        answered,
        seconds,
        visible,
        reasons,
        click_x,
        click_y,
    ) in rows:
        yield [
            name,
            readers[assignment_id],
            *profiles[assignment_id],
            position + 1,
            read,
            *items[item_id],
            label,
            confidence,
            _iso(shown),
            _iso(answered),
            f"{seconds:.3f}",
            "" if visible is None else f"{visible / 1000:.3f}",
            "" if visible is None else int(visible < too_fast),
            "; ".join(reasons or []),
            "" if click_x is None else f"{click_x:.3f}",
            "" if click_y is None else f"{click_y:.3f}",
            *sources[item_id],
        ]


def _profile_columns(assignment: Assignment) -> list[Any]:
    """The reader's profile as export cells (empty when the study asked none, or they gave none)."""
    years = "" if assignment.profile_years is None else assignment.profile_years
    return [
        assignment.profile_role,
        years,
        yes_no(assignment.profile_gi),
        yes_no(assignment.profile_seen_synthetic),
    ]


def _ratings(study: Study, chunk_size: int) -> Iterator[tuple[str, str, str, str, int]]:
    """(reader pseudonym, item token, truth, arm, 1-10 rating) of every first read, by the one rating
    rule; a removed reader's answers are analysis input for no one (they stay in the answers export)."""
    pseudonyms = reader_pseudonyms(study=study)
    rows = (
        Answer.objects.filter(
            assignment__study=study, label__isnull=False, read=1, assignment__removed_at__isnull=True
        )
        .order_by("assignment_id", "position")
        .values_list("assignment_id", "item__token", "item__truth", "item__arm__name", "label", "confidence")
        .iterator(chunk_size=chunk_size)
    )
    for assignment_id, token, truth, arm, label, confidence in rows:
        yield pseudonyms[assignment_id], token, truth, arm or "", stats.rating(str(label), confidence)


def _modalities(study: Study) -> list[str] | None:
    """The arms as modalities of the MRMC tables, or None for a study with one synthetic arm."""
    names = list(study.arms.values_list("name", flat=True))
    return names if len(names) > 1 else None


def _per_modality(study: Study, chunk_size: int, single: str) -> Iterator[tuple[str, str, str, str, int]]:
    """(modality, reader, case, truth, rating): one modality `single` for a one-arm study; with several
    arms, each arm is a modality holding the real cases and its own (a real case's rows stand in every
    modality, with the same rating), which is how MRMC software reads arms that share the real cases."""
    arms = _modalities(study)
    for reader, token, truth, arm, score in _ratings(study, chunk_size):
        for modality in [single] if arms is None else ([arm] if arm else arms):
            yield modality, reader, token, truth, score


def imrmc_rows(*, study: Study, chunk_size: int = 5000) -> Iterator[list[Any]]:
    """iMRMC's long format: truth rows (readerID -1), then one score per reader and case (modality
    "human", or one modality per arm: see `_per_modality`).

    The score is the 1-10 "how synthetic" rating (`analysis.stats.RATING_SCALE`), as in the report.
    """
    yield ["readerID", "caseID", "modalityID", "score"]
    for token, truth in (
        study.items.order_by("id").values_list("token", "truth").iterator(chunk_size=chunk_size)
    ):
        yield [-1, token, "truth", 1 if truth == stats.SYNTHETIC else 0]
    for modality, reader, token, _truth, score in _per_modality(study, chunk_size, "human"):
        yield [reader, token, modality, score]


RATINGS_COLUMNS = ["reader", "modality", "case", "truth", "rating"]


def ratings_rows(*, study: Study, chunk_size: int = 5000) -> Iterator[list[Any]]:
    """OR-DBM MRMC / RJafroc / MRMCaov layout (truth 1 = synthetic; modality 1, or the arm's name with
    several arms); `python -m evaluation.mrmc` reads it and analyses the arms as the report does."""
    yield RATINGS_COLUMNS
    for modality, reader, token, truth, score in _per_modality(study, chunk_size, "1"):
        yield [reader, modality, token, 1 if truth == stats.SYNTHETIC else 0, score]


SUMMARY_COLUMNS = [
    "scope",
    "measure",
    "successes",
    "n",
    "estimate",
    "p_value",
    "clopper_pearson_low",
    "clopper_pearson_high",
    "wilson_low",
    "wilson_high",
    "gee_bias_reduced_t_low",
    "gee_bias_reduced_t_high",
    "rrrc_low",
    "rrrc_high",
    "rrrc_df",
    "kappa_asymptotic_low",
    "kappa_asymptotic_high",
    "note",
]


def summary_rows(
    *,
    result: report.StudyStatistics,
    protocol_hash: str = "",
    record_head: str = "",
    within_reader: agreement.WithinReader | None = None,
) -> Iterator[dict[str, Any]]:
    """One row per figure, each interval in the columns named for its method."""

    def prop_row(scope: str, measure: str, p: stats.Proportion) -> dict[str, Any]:
        row = {"scope": scope, "measure": measure, "successes": p.successes, "n": p.n, "estimate": p.share}
        row |= {"p_value": p.p_value, "note": p.reason or "answer level: answers treated as independent"}
        if p.clopper_pearson:
            row["clopper_pearson_low"], row["clopper_pearson_high"] = p.clopper_pearson
        if p.wilson:
            row["wilson_low"], row["wilson_high"] = p.wilson
        return row

    yield {"scope": "study", "measure": "protocol hash", "note": protocol_hash or "not frozen yet"}
    yield {"scope": "study", "measure": "record head", "note": record_head}
    v = result.verdict
    alpha = result.protocol.alpha
    yield {
        "scope": "study",
        "measure": f"verdict: {v.kind}",
        "estimate": v.auc,
        "note": f"{v.headline} Rule: {v.rule}",
    }
    # Both intervals the rule reads, each under its own level: the kind rests on one of them.
    for level, interval, use in (
        (1 - alpha, v.ci, "difference from chance (detectable / reversed)"),
        (1 - 2 * alpha, v.ci_tost, "equivalence within the margin (two one-sided tests)"),
    ):
        if interval is not None:
            yield {
                "scope": "study",
                "measure": f"verdict interval, {100 * level:g}% RRRC",
                "estimate": v.auc,
                "rrrc_low": interval[0],
                "rrrc_high": interval[1],
                "note": f"for {use}" + ("; the verdict rests on this one" if v.level == level else ""),
            }
    for name, analysis in (
        ("ROC AUC (ratings)", result.mrmc.result),
        ("balanced accuracy", result.mrmc.balanced),
    ):
        if analysis is None:
            yield {"scope": "readers x items", "measure": name, "note": result.mrmc.reason}
            continue
        single = analysis.single[0]
        row = {"scope": "readers x items", "measure": f"{name}, OR MRMC", "estimate": single.auc_mean}
        if single.rrrc is not None:
            row |= {"rrrc_low": single.rrrc.low, "rrrc_high": single.rrrc.high, "rrrc_df": single.rrrc.df}
        yield row | {"n": len(analysis.readers), "note": "n = readers; random readers and random cases"}
    scopes = [("pooled", result.pooled)] + [(f"reader {r}", a) for r, a in result.per_reader.items()]
    scopes += [(f"class {c}", a) for c, a in result.per_class.items()]
    for scope, acc in scopes:
        yield prop_row(scope, "real called real", acc.real)
        yield prop_row(scope, "synthetic called synthetic", acc.synthetic)
        yield prop_row(scope, "overall accuracy", acc.overall)
    biases = [("pooled", result.bias_pooled)] + [
        (f"reader {r}", b) for r, b in result.bias_per_reader.items()
    ]
    for scope, b in biases:
        for measure in (
            "hit_rate",
            "false_alarm_rate",
            "d_prime",
            "criterion",
            "called_real",
            "balanced_accuracy",
        ):
            yield {
                "scope": scope,
                "measure": measure.replace("_", " "),
                "estimate": getattr(b, measure),
                "note": b.reason,
            }
    bt = result.bias_test
    yield {
        "scope": "readers",
        "measure": "mean criterion c (t test across readers)",
        "estimate": bt.mean_criterion,
        "p_value": bt.p_value,
        "note": bt.reason,
    }
    yield {
        "scope": "pooled",
        "measure": "Fleiss kappa",
        "n": result.fleiss.n_items,
        "estimate": result.fleiss.value,
        "note": result.fleiss.reason,
    }
    for (a, b_), kappa in result.cohen.items():
        yield {
            "scope": f"readers {a} & {b_}",
            "measure": "Cohen kappa",
            "n": kappa.n_items,
            "estimate": kappa.value,
            "note": kappa.reason,
        }
    c = result.clustered
    note = c.reason or "GEE clustered by reader only (bias-reduced covariance, t with readers - 1 df)"
    for measure, value, ci in (
        ("real called real", c.real, c.real_ci),
        ("synthetic called synthetic", c.synthetic, c.synthetic_ci),
    ):
        row = {"scope": "GEE (reader clusters)", "measure": measure, "estimate": value, "note": note}
        if ci:
            row["gee_bias_reduced_t_low"], row["gee_bias_reduced_t_high"] = ci
        yield row
    if result.arms is not None:
        yield from _arm_summary_rows(result.arms, prop_row)
    if within_reader is not None:
        yield from _within_reader_rows(within_reader)


def _within_reader_rows(within: agreement.WithinReader) -> Iterator[dict[str, Any]]:
    note = "repeat reads: first against second read of the same item (not in the primary analysis)"
    for scope, a in [*((f"reader {r}", a) for r, a in within.readers.items()), ("pooled", within.pooled)]:
        row = {"scope": scope, "measure": "same label on both reads", "successes": a.agreeing, "n": a.pairs}
        if a.share_ci:
            row |= {"wilson_low": a.share_ci[0], "wilson_high": a.share_ci[1]}
        yield row | {"estimate": a.share, "note": note}
        row = {"scope": scope, "measure": "within-reader Cohen kappa", "n": a.pairs, "estimate": a.kappa}
        if a.kappa_ci:
            row |= {"kappa_asymptotic_low": a.kappa_ci[0], "kappa_asymptotic_high": a.kappa_ci[1]}
        yield row | {"note": a.reason or note}


def _arm_summary_rows(analysis: arms.ArmAnalysis, prop_row: Any) -> Iterator[dict[str, Any]]:
    yield {"scope": "arms", "measure": "rule", "note": analysis.rule}
    for arm in analysis.arms:
        scope = f"arm {arm.arm}"
        yield prop_row(scope, "fool rate (synthetic called real)", arm.fool_rate)
        yield prop_row(scope, "synthetic called synthetic", arm.detected)
        row = {"scope": scope, "measure": "ROC AUC vs the real patches, OR MRMC", "estimate": arm.auc}
        if arm.rrrc is not None:
            row |= {"rrrc_low": arm.rrrc.low, "rrrc_high": arm.rrrc.high, "rrrc_df": arm.rrrc.df}
        yield row | {"note": analysis.reason or "random readers and random cases"}
        yield {
            "scope": scope,
            "measure": f"verdict: {arm.verdict.kind}",
            "note": f"Arm {arm.arm} against the real patches: {arm.verdict.headline}",
        }
    for c in analysis.comparisons:
        row = {"scope": f"arms {c.first} vs {c.second}", "measure": "AUC difference, OR MRMC"}
        row |= {"estimate": c.difference, "p_value": c.p_holm, "note": c.sentence}
        if c.rrrc is not None:
            row |= {"rrrc_low": c.rrrc.low, "rrrc_high": c.rrrc.high, "rrrc_df": c.rrrc.df}
        yield row


MRMC_COLUMNS = ["analysis", "treatment", "reader", "measure", "value"]


def mrmc_rows(
    *, result: report.StudyStatistics, protocol_hash: str = "", record_head: str = ""
) -> Iterator[dict[str, Any]]:
    """The MRMC table: reader AUCs, variance components and the RRRC, FRRC and RRFC results."""
    yield {"analysis": "study", "measure": "protocol hash", "value": protocol_hash or "not frozen yet"}
    yield {"analysis": "study", "measure": "record head", "value": record_head}
    analyses = [("ratings", result.mrmc.result), ("labels only", result.mrmc.balanced)]
    if result.arms is not None:
        analyses.append(("arms as treatments", result.arms.result))
    for name, analysis in analyses:
        if analysis is None:
            reason = (
                result.arms.reason if name == "arms as treatments" and result.arms else result.mrmc.reason
            )
            yield {"analysis": name, "measure": "not available", "value": reason}
            continue
        for difference in analysis.differences:
            base = {"analysis": name, "treatment": f"{difference.first} - {difference.second}"}
            if difference.rrrc is not None:
                for part in ("estimate", "stderr", "df", "low", "high", "p_value"):
                    yield base | {
                        "measure": f"RRRC difference {part}",
                        "value": getattr(difference.rrrc, part),
                    }
        for t, treatment in enumerate(analysis.treatments):
            for r, reader in enumerate(analysis.readers):
                yield {
                    "analysis": name,
                    "treatment": treatment,
                    "reader": reader,
                    "measure": "AUC",
                    "value": analysis.auc[t][r],
                }
            single = analysis.single[t]
            base = {"analysis": name, "treatment": treatment}
            for measure in ("auc_mean", "var_error", "cov2", "ms_r"):
                yield base | {"measure": measure, "value": getattr(single, measure)}
            for method in ("rrrc", "frrc", "rrfc"):
                interval = getattr(single, method)
                if interval is None:
                    continue
                for part in ("stderr", "df", "low", "high"):
                    value = getattr(interval, part)
                    yield base | {
                        "measure": f"{method.upper()} {part}",
                        "value": "inf" if value == float("inf") else value,
                    }
    v = result.verdict
    yield {"analysis": "verdict", "measure": v.kind, "value": v.headline}
    yield {"analysis": "verdict", "measure": "rule", "value": v.rule}
    alpha = result.protocol.alpha
    for level, interval in ((1 - alpha, v.ci), (1 - 2 * alpha, v.ci_tost)):
        if interval is not None:
            for part, value in zip(("low", "high"), interval, strict=True):
                yield {"analysis": "verdict", "measure": f"{100 * level:g}% CI {part}", "value": value}


AUGMENTATION_COLUMNS = [
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


def augmentation_rows(*, experiment: Any) -> Iterator[dict[str, Any]]:
    for arm in experiment.results.get("arms", []):
        test = arm.get("mcnemar_vs_baseline") or {}
        for measure in ("accuracy", "macro_f1", "recall_c"):
            figure = arm[measure]
            low, high = figure["ci95"] or ("", "")
            yield {
                "arm": arm["arm"],
                "synthetic_added": arm["amount"] or 0,
                "n_train": arm["n_train"],
                "measure": measure,
                "mean": figure["mean"],
                "ci_low": low,
                "ci_high": high,
                "per_seed": " ".join(f"{v:.4f}" for v in figure["per_seed"]),
                "mcnemar_p_vs_baseline": test.get("p_value", ""),
            }


AUDIT_COLUMNS = ["at", "kind", "actor", "before", "after"]


def audit_rows(*, study: Study, names: bool = False) -> Iterator[dict[str, Any]]:
    """The study's audit trail: readers as their pseudonyms (user names with `names`), managers by name."""
    readers = dict(Assignment.objects.filter(study=study).values_list("reader_id", "id"))
    by_assignment = reader_pseudonyms(study=study)
    usernames = (
        dict(Assignment.objects.filter(study=study).values_list("reader_id", "reader__username"))
        if names
        else {}
    )

    def reader_named(payload: dict[str, Any]) -> dict[str, Any]:
        """A reader in an event's content as the report names them (a user id is no one's name)."""
        reader = payload.get("reader") if isinstance(payload, dict) else None
        if not isinstance(reader, int) or reader not in readers:
            return payload
        return payload | {"reader": usernames[reader] if names else by_assignment[readers[reader]]}

    for event in study.events.select_related("actor").order_by("at", "id"):
        actor = ""
        if event.actor is not None:
            assignment = readers.get(event.actor.pk)
            actor = event.actor.get_username() if names or assignment is None else by_assignment[assignment]
        yield {
            "at": event.at.isoformat(),
            "kind": event.kind,
            "actor": actor,
            "before": json.dumps(reader_named(event.before), sort_keys=True),
            "after": json.dumps(reader_named(event.after), sort_keys=True),
        }


KINDS = ("answers", "summary", "mrmc", "ratings", "imrmc", "audit")


@dataclass(frozen=True)
class Export:
    name: str  # its file name
    lines: Iterator[str]  # CSV lines, streamed
    protocol_hash: str
    record_head: str


def study_export(*, study: Study, kind: str, names: bool = False) -> Export:
    """One of the study's exports (`KINDS`). Every export names the frozen protocol and the record's head
    it comes from, in its file name (and the summary and MRMC tables in rows); the one with user names
    says so in its name."""
    head = study_record_head(study_id=study.pk)
    if kind == "answers":
        lines = csv_lines(itertools.chain([TIDY_COLUMNS], tidy_answer_rows(study=study, names=names)))
    elif kind == "summary":
        result = study_figures(study=study)
        rows = summary_rows(
            result=result,
            protocol_hash=study.protocol_hash,
            record_head=head,
            within_reader=study_within_reader(study=study),
        )
        lines = csv_dict_lines(SUMMARY_COLUMNS, rows)
    elif kind == "mrmc":
        result = study_figures(study=study)
        lines = csv_dict_lines(
            MRMC_COLUMNS, mrmc_rows(result=result, protocol_hash=study.protocol_hash, record_head=head)
        )
    elif kind == "ratings":
        lines = csv_lines(ratings_rows(study=study))
    elif kind == "audit":
        lines = csv_dict_lines(AUDIT_COLUMNS, audit_rows(study=study, names=names))
    elif kind == "imrmc":
        lines = csv_lines(imrmc_rows(study=study))
    else:
        raise ValueError(f"unknown export {kind!r}")
    protocol = study.protocol_hash or "not-frozen"
    identified = "-with-user-names" if names else ""
    name = (
        f"{slugify(study.name) or 'study'}-{kind}{identified}-protocol-{protocol[:12]}-record-{head[:12]}.csv"
    )
    return Export(name, lines, protocol, head)
