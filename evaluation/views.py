from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from core.charts import (
    line_chart_svg,
    overlaid_histograms_svg,
)
from core.forms import form_page, form_submit
from core.responses import svg_response
from core.roles import IsStudyManager, study_manager_required
from evaluation import archive, exports, report_page, selectors, services
from evaluation.csv_export import csv_dict_lines
from evaluation.forms import AugmentationForm, ClassifierForm, CopyingCheckForm, FidReportForm
from evaluation.models import AugmentationExperiment, Classifier, CopyingCheck, FidReport
from turing.models import Study

EXPORTS = exports.KINDS
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
        name: report_page.data_uri(
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
    """The report (`evaluation.report_page`): statistics computed once, charts drawn from them."""
    study = get_object_or_404(Study, pk=study_id)
    return render(request, "evaluation/study_report.html", report_page.study_report(study=study))


@study_manager_required
@require_GET
def study_arm_gallery(request: HttpRequest, study_id: int, arm_id: int) -> HttpResponse:
    """An arm's synthetic patches, the most convincing first (managers only: it shows the truth)."""
    study = get_object_or_404(Study, pk=study_id)
    arm = get_object_or_404(study.arms, pk=arm_id)
    context = {"study": study, "arm": arm, "patches": selectors.arm_gallery(arm=arm)}
    return render(request, "evaluation/arm_gallery.html", context)


@study_manager_required
@require_GET
def study_fig5(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=study_id)
    return svg_response(report_page.answers_by_truth_svg(study, selectors.study_figures(study=study)))


@study_manager_required
@require_GET
def study_fool_rates(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=study_id)
    return svg_response(report_page.fool_rates_svg(selectors.study_figures(study=study)))


def _export(study: Study, kind: str, names: bool) -> StreamingHttpResponse:
    made = exports.study_export(study=study, kind=kind, names=names)
    response = StreamingHttpResponse(made.lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{made.name}"'
    response["X-Protocol-Hash"] = made.protocol_hash
    response["X-Record-Head"] = made.record_head
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
        csv_dict_lines(exports.AUGMENTATION_COLUMNS, exports.augmentation_rows(experiment=experiment)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="augmentation-{experiment.pk}.csv"'
    return response
