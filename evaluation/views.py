from __future__ import annotations

import base64
import itertools
import math
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from analysis import arms, report, stats, summary
from analysis.reading_time import reading_time
from core.charts import (
    forest_svg,
    grouped_bars_svg,
    heatmap_svg,
    histogram_svg,
    line_chart_svg,
    overlaid_histograms_svg,
    roc_curves_svg,
    stacked_share_chart_svg,
)
from core.forms import form_page, form_submit
from core.responses import svg_response
from core.roles import IsStudyManager, study_manager_required
from evaluation import archive, selectors, services
from evaluation.csv_export import csv_dict_lines, csv_lines
from evaluation.forms import AugmentationForm, ClassifierForm, CopyingCheckForm, FidReportForm
from evaluation.models import AugmentationExperiment, Classifier, CopyingCheck, FidReport
from turing.models import Study
from turing.selectors import study_record_head
from turing.services import study_shortcut_check, study_verify

EXPORTS = ("answers", "summary", "mrmc", "ratings", "imrmc", "audit")
UNKNOWN_EXPORT = f"Unknown export: use one of {', '.join(EXPORTS)}."


def _report_list(
    request: HttpRequest,
    *,
    fid_form: FidReportForm | None = None,
    classifier_form: ClassifierForm | None = None,
) -> HttpResponse:
    invalid = fid_form is not None or classifier_form is not None
    context = {
        "studies": selectors.studies_with_answers(),
        "fid_reports": FidReport.objects.select_related("sampling_run__checkpoint__run", "job")[:50],
        "fid_form": fid_form or FidReportForm(),
        "classifiers": Classifier.objects.select_related("dataset", "job")[:20],
        "classifier_form": classifier_form or ClassifierForm(),
    }
    return render(request, "evaluation/report_list.html", context, status=400 if invalid else 200)


@study_manager_required
@require_GET
def report_list(request: HttpRequest) -> HttpResponse:
    return _report_list(request)


@study_manager_required
@require_POST
def classifier_new(request: HttpRequest) -> HttpResponse:
    form = ClassifierForm(request.POST)

    def start(data: dict[str, Any]) -> HttpResponse:
        classifier = services.classifier_train_start(
            dataset=data["dataset"], epochs=data["epochs"], created_by=request.user
        )
        return redirect("job_detail", job_id=classifier.job_id)

    return form_submit(form, start, services.ClassifierError) or _report_list(request, classifier_form=form)


@study_manager_required
@require_POST
def fid_report_new(request: HttpRequest) -> HttpResponse:
    form = FidReportForm(request.POST)

    def start(data: dict[str, Any]) -> HttpResponse:
        fields = ("sampling_run", "real_dataset", "n_images", "seed")
        report = services.fid_report_start(**{name: data[name] for name in fields}, created_by=request.user)
        return redirect("evaluation:fid_report", report_id=report.pk)

    return form_submit(form, start, services.ReportError) or _report_list(request, fid_form=form)


@study_manager_required
@require_http_methods(["GET", "POST"])
def copying_list(request: HttpRequest) -> HttpResponse:
    """The copying checks, and a form to start one (`?dataset=<id>` chooses the synthetic set)."""
    initial = {"synthetic_dataset": request.GET.get("dataset")}
    form = CopyingCheckForm(request.POST or None, initial=initial)

    def start(data: dict[str, Any]) -> HttpResponse:
        check = services.copying_check_start(
            synthetic_dataset=data["synthetic_dataset"],
            reference_dataset=data["reference_dataset"],
            created_by=request.user,
        )
        return redirect("job_detail", job_id=check.job_id)

    context = {"checks": selectors.copying_checks()}
    return form_page(request, form, "evaluation/copying_list.html", start, services.EvaluationError, context)


@study_manager_required
@require_GET
def copying_check(request: HttpRequest, check_id: int) -> HttpResponse:
    check = get_object_or_404(
        CopyingCheck.objects.select_related("synthetic_dataset", "reference_dataset", "job"), pk=check_id
    )
    charts = {
        name: _data_uri(
            overlaid_histograms_svg(
                series={
                    "synthetic to nearest training patch": space["synthetic_distances"],
                    "real to nearest other training patch": space["baseline_distances"],
                },
                line=space["threshold"],
                title=f"Nearest-neighbour distances ({name})",
                x_label="Euclidean distance",
            )
        )
        for name, space in check.results.get("spaces", {}).items()
    }
    return render(request, "evaluation/copying_check.html", {"check": check, "charts": charts})


@study_manager_required
@require_GET
def fid_report(request: HttpRequest, report_id: int) -> HttpResponse:
    report = get_object_or_404(
        FidReport.objects.select_related("sampling_run__checkpoint__run", "job"), pk=report_id
    )
    return render(request, "evaluation/fid_report.html", {"report": report})


@study_manager_required
@require_GET
def study_report(request: HttpRequest, study_id: int) -> HttpResponse:
    """The report: statistics computed once, charts drawn from them into the page."""
    study = get_object_or_404(Study, pk=study_id)
    records = selectors.study_records(study=study)
    result = selectors.study_statistics(study=study, records=records)
    analysis = result.mrmc.result
    reader_auc = {}
    if analysis is not None:
        for r, reader in enumerate(analysis.readers):
            reader_auc[reader] = (analysis.auc[0][r], math.sqrt(max(analysis.auc_var[0][r], 0.0)))
    return render(
        request,
        "evaluation/study_report.html",
        {
            "study": study,
            "result": result,
            "summary": summary.plain_summary(result),
            "single": analysis.single[0] if analysis is not None else None,
            "balanced": result.mrmc.balanced.single[0] if result.mrmc.balanced is not None else None,
            "per_reader": [
                (r, acc, result.bias_per_reader[r], reader_auc.get(r))
                for r, acc in sorted(result.per_reader.items())
            ],
            "cohen": [(f"{a} & {b}", k) for (a, b), k in result.cohen.items()],
            "per_class": sorted(result.per_class.items()),
            "fool_mean": sum(result.fool_rates.values()) / len(result.fool_rates)
            if result.fool_rates
            else None,
            "charts": _report_charts(study, records, result),
            "rating_scale": stats.RATING_SCALE,
            # Every interval's printed level is the one the rule reading it uses.
            "level": f"{100 * (1 - result.protocol.alpha):g}",
            "level_tost": f"{100 * (1 - 2 * result.protocol.alpha):g}",
            "arm_level": f"{100 * (1 - result.protocol.alpha / max(len(result.arms.arms), 1)):g}"
            if result.arms
            else "",
            "events": study.events.count(),
            "record_changes": study_verify(study=study),
            "record_head": study_record_head(study_id=study.pk),
            "record_entries": study.record.count(),
            "arms": list(study.arms.all()),
            "shortcut": study_shortcut_check(study=study),
            "copying": selectors.study_copying(study=study),
            "reading": reading_time(records, study.too_fast_ms),
            "experience": selectors.experience_rows(study=study, result=result),
            "within_reader": selectors.study_within_reader(study=study),
            "reasons": selectors.reason_rows(study=study) if study.ask_reasons else [],
            "clicks": _data_uri(
                heatmap_svg(
                    points=selectors.study_clicks(study=study), bins=16, title="Where the giveaway was"
                )
            )
            if study.ask_reasons
            else None,
        },
    )


@study_manager_required
@require_GET
def study_arm_gallery(request: HttpRequest, study_id: int, arm_id: int) -> HttpResponse:
    """An arm's synthetic patches, the most convincing first (managers only: it shows the truth)."""
    study = get_object_or_404(Study, pk=study_id)
    arm = get_object_or_404(study.arms, pk=arm_id)
    context = {"study": study, "arm": arm, "patches": selectors.arm_gallery(arm=arm)}
    return render(request, "evaluation/arm_gallery.html", context)


def _arm_charts(analysis: arms.ArmAnalysis) -> dict[str, str]:
    """The arms side by side: each arm's AUC against the real patches, and how its patches were called."""
    rows = [
        (f"arm {a.arm}", a.auc, a.rrrc.low, a.rrrc.high)
        for a in analysis.arms
        if a.auc is not None and a.rrrc
    ]
    shares = {
        f"arm {a.arm}": (a.fool_rate.share or 0.0, a.detected.share or 0.0)
        for a in analysis.arms
        if a.fool_rate.n
    }
    return {
        "arms_auc": _data_uri(
            forest_svg(
                rows=rows, reference=0.5, x_label="ROC AUC of each arm vs the real patches (95% RRRC CI)"
            )
        ),
        "arms_calls": _data_uri(
            stacked_share_chart_svg(
                groups=shares,
                labels=("called real", "called synthetic"),
                title="Each arm's patches, as called",
            )
        ),
    }


def _data_uri(svg: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def _report_charts(
    study: Study, records: list[stats.Record], result: report.StudyStatistics
) -> dict[str, str]:
    by_reader: dict[str, list[stats.Record]] = {}
    for record in records:
        by_reader.setdefault(record.reader, []).append(record)
    curves = {name: points for name, rs in sorted(by_reader.items()) if (points := stats.roc_points(rs))}
    included = [curves[name] for name in result.mrmc.readers if name in curves]
    mean = None
    if included:  # threshold averaging: the readers' rates at each rating threshold, averaged
        mean = (
            [sum(c[0][i] for c in included) / len(included) for i in range(len(included[0][0]))],
            [sum(c[1][i] for c in included) / len(included) for i in range(len(included[0][1]))],
        )
    rows = []
    analysis = result.mrmc.result
    if analysis is not None:
        for r, reader in enumerate(analysis.readers):
            se = math.sqrt(max(analysis.auc_var[0][r], 0.0))
            auc = analysis.auc[0][r]
            rows.append((reader, auc, auc - 1.959964 * se, auc + 1.959964 * se))
        single = analysis.single[0]
        if single.rrrc is not None:
            rows.append(("mean (RRRC)", single.auc_mean, single.rrrc.low, single.rrrc.high))
    charts = _arm_charts(result.arms) if result.arms is not None else {}
    return charts | {
        "roc": _data_uri(roc_curves_svg(curves=curves, mean=mean)),
        "forest": _data_uri(
            forest_svg(rows=rows, reference=0.5, x_label="ROC AUC, synthetic vs real (95% CI; 0.5 = chance)")
        ),
        "ratings": _data_uri(
            grouped_bars_svg(
                groups={f"{t} patches": c for t, c in stats.rating_counts(records).items()},
                categories=[str(k) for k in range(1, 11)],
                title="Ratings by truth (1 = surely real, 10 = surely synthetic)",
                y_label="answers",
            )
        ),
        "fig5": _data_uri(_answers_by_truth_svg(study, result)),
        "fool_rates": _data_uri(_fool_rates_svg(result)),
    }


@study_manager_required
@require_GET
def study_fig5(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=study_id)
    return svg_response(_answers_by_truth_svg(study, selectors.study_statistics(study=study)))


@study_manager_required
@require_GET
def study_fool_rates(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=study_id)
    return svg_response(_fool_rates_svg(selectors.study_statistics(study=study)))


def _answers_by_truth_svg(study: Study, result: report.StudyStatistics) -> bytes:
    """Like the paper's Fig. 5: for each truth, the share of answers that called it correctly."""
    pooled = result.pooled
    groups = {
        f"{truth} patches": (p.share or 0.0, 1 - (p.share or 0.0) if p.n else 0.0)
        for truth, p in (("real", pooled.real), ("synthetic", pooled.synthetic))
    }
    return stacked_share_chart_svg(
        groups=groups,
        labels=("called correctly", "called incorrectly"),
        title=f"{study.name}: answers by truth",
    )


def _fool_rates_svg(result: report.StudyStatistics) -> bytes:
    return histogram_svg(
        values=list(result.fool_rates.values()),
        bins=10,
        title="Fool rate of each synthetic image",
        x_label="share of readers who called it real",
    )


def _export(study: Study, kind: str, names: bool) -> StreamingHttpResponse:
    head = study_record_head(study_id=study.pk)
    if kind == "answers":
        body = csv_lines(
            itertools.chain([selectors.TIDY_COLUMNS], selectors.tidy_answer_rows(study=study, names=names))
        )
    elif kind == "summary":
        result = selectors.study_statistics(study=study)
        body = csv_dict_lines(
            selectors.SUMMARY_COLUMNS,
            selectors.summary_rows(
                result=result,
                protocol_hash=study.protocol_hash,
                record_head=head,
                within_reader=selectors.study_within_reader(study=study),
            ),
        )
    elif kind == "mrmc":
        result = selectors.study_statistics(study=study)
        body = csv_dict_lines(
            selectors.MRMC_COLUMNS,
            selectors.mrmc_rows(result=result, protocol_hash=study.protocol_hash, record_head=head),
        )
    elif kind == "ratings":
        body = csv_lines(selectors.ratings_rows(study=study))
    elif kind == "audit":
        body = csv_dict_lines(selectors.AUDIT_COLUMNS, selectors.audit_rows(study=study, names=names))
    else:
        body = csv_lines(selectors.imrmc_rows(study=study))
    response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
    # Every export names the frozen protocol and the record's head it comes from: in its file name and
    # in headers (the summary and MRMC tables also in rows). The one with user names says so in its name.
    protocol = study.protocol_hash or "not-frozen"
    identified = "-with-user-names" if names else ""
    name = (
        f"{slugify(study.name) or 'study'}-{kind}{identified}-protocol-{protocol[:12]}-record-{head[:12]}.csv"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Protocol-Hash"] = protocol
    response["X-Record-Head"] = head
    return response


@study_manager_required
@require_GET
def study_archive(request: HttpRequest, study_id: int) -> HttpResponse:
    """The study's archive (`evaluation.archive`): one zip a reviewer checks offline."""
    study = get_object_or_404(Study, pk=study_id)
    made = archive.study_archive(study=study)
    response = HttpResponse(made.data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{made.name}"'
    response["X-Record-Head"] = made.record_head
    return response


class StudyExportApi(APIView):
    """A study's CSV exports, for the report page's links and for scripts (one view serves both URLs):
    ?names=1 puts user names in place of pseudonyms."""

    permission_classes = [IsStudyManager]

    @extend_schema(
        responses={(200, "text/csv"): OpenApiTypes.STR},
        parameters=[
            OpenApiParameter("names", OpenApiTypes.STR, description="1: user names instead of pseudonyms")
        ],
        summary="A study's answers, summary statistics or iMRMC table as CSV",
    )
    def get(self, request: Request, study_id: int, kind: str) -> HttpResponseBase:
        study = get_object_or_404(Study, pk=study_id)
        if kind not in EXPORTS:
            raise Http404(UNKNOWN_EXPORT)  # never echoes the name asked for: it is part of the URL
        return _export(study, kind, names=request.query_params.get("names") == "1")


@study_manager_required
@require_http_methods(["GET", "POST"])
def augmentation_list(request: HttpRequest) -> HttpResponse:
    form = AugmentationForm(request.POST or None)

    def start(data: dict[str, Any]) -> HttpResponse:
        # The form's fields are named as the plan's arguments, but for the classifier's epochs.
        arguments = {name: value for name, value in data.items() if name != "epochs"}
        plan = services.augmentation_plan(**arguments, classifier={"epochs": data["epochs"]})
        experiment = services.augmentation_start(plan=plan, created_by=request.user)
        return redirect("evaluation:augmentation_detail", experiment_id=experiment.pk)

    context = {"experiments": selectors.augmentation_experiments()}
    return form_page(
        request, form, "evaluation/augmentation_list.html", start, services.ExperimentError, context
    )


@study_manager_required
@require_GET
def augmentation_detail(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_object_or_404(AugmentationExperiment.objects.select_related("job"), pk=experiment_id)
    return render(request, "evaluation/augmentation_detail.html", {"experiment": experiment})


@study_manager_required
@require_GET
def augmentation_chart(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = get_object_or_404(AugmentationExperiment, pk=experiment_id)
    arms = [
        a
        for a in experiment.results.get("arms", [])
        if a["arm"] == "scarce" or a["arm"].startswith("scarce +")
    ]
    points = sorted(
        ((a["amount"] or 0), a["recall_c"]["mean"]) for a in arms if a["recall_c"]["mean"] is not None
    )
    baseline = next((a for a in experiment.results.get("arms", []) if a["arm"] == "baseline"), None)
    series = {f"scarce {experiment.tissue_class} + synthetic": [p[1] for p in points]}
    if baseline and baseline["recall_c"]["mean"] is not None:
        series["baseline (all real)"] = [baseline["recall_c"]["mean"]] * len(points)
    return svg_response(
        line_chart_svg(
            x=[p[0] for p in points],
            series=series,
            title=f"Recall of {experiment.tissue_class} on the real test set",
            x_label=f"synthetic {experiment.tissue_class} patches added",
            y_label="recall (mean over seeds)",
        )
    )


@study_manager_required
@require_GET
def augmentation_csv(request: HttpRequest, experiment_id: int) -> HttpResponseBase:
    experiment = get_object_or_404(AugmentationExperiment, pk=experiment_id)
    response = StreamingHttpResponse(
        csv_dict_lines(selectors.AUGMENTATION_COLUMNS, selectors.augmentation_rows(experiment=experiment)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="augmentation-{experiment.pk}.csv"'
    return response
