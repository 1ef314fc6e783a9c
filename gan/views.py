from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from core.charts import line_chart_svg
from core.forms import form_page
from core.responses import svg_response
from core.roles import study_manager_required
from gan import selectors, services
from gan.forms import DatasetImportForm, SamplingRunForm, TrainingRunForm
from gan.models import Dataset, Patch, SamplingRun, TrainingRun
from gan.sources import PAPER_SYNTHETIC_COUNT
from neural.health import RULES as HEALTH_RULES


@study_manager_required
@require_GET
def dataset_list(request: HttpRequest) -> HttpResponse:
    return render(request, "gan/dataset_list.html", {"datasets": selectors.datasets_overview()})


@study_manager_required
@require_GET
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    counts = selectors.dataset_class_counts(dataset=dataset)
    sample = selectors.dataset_sample_patches(dataset=dataset)
    context = {
        "dataset": dataset,
        "counts": counts,
        "sample": sample,
        "class_check": selectors.dataset_class_check_lines(dataset=dataset),
        "width_um": (dataset.microns_per_pixel or 0) * dataset.patch_size,
    }
    return render(request, "gan/dataset_detail.html", context)


@study_manager_required
@require_http_methods(["GET", "POST"])
def dataset_import(request: HttpRequest) -> HttpResponse:
    form = DatasetImportForm(request.POST or None, request.FILES or None)

    def start(data: dict[str, Any]) -> HttpResponse:
        common = {
            "classes": data["classes"],
            "created_by": request.user,
            "generator": data["generator_record"],
            "size": data["size"],
            "source_microns_per_pixel": data.get("microns_per_pixel"),
        }
        if data.get("archive"):
            job = services.dataset_import_upload(archive=data["archive"], name=data["name"], **common)
        else:
            path = services.import_path_resolve(relative=data["server_path"])
            job = services.dataset_import_start(path=path, name=data["name"] or None, **common)
        return redirect("job_detail", job_id=job.pk)

    context = {"import_root": settings.IMPORT_ROOT}
    return form_page(request, form, "gan/dataset_import.html", start, services.DatasetImportError, context)


@study_manager_required
@require_GET
def patch_image(request: HttpRequest, patch_id: int) -> FileResponse:
    """A patch's PNG for study managers (experts see patches only through blinded study items)."""
    patch = get_object_or_404(Patch, pk=patch_id)
    response = FileResponse(patch.image.open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --- Training and sampling runs -------------------------------------------------------------------


@study_manager_required
@require_GET
def run_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "gan/run_list.html",
        {"training_runs": selectors.training_runs(), "sampling_runs": selectors.sampling_runs()},
    )


@study_manager_required
@require_http_methods(["GET", "POST"])
def run_new(request: HttpRequest) -> HttpResponse:
    form = TrainingRunForm(request.POST or None)

    def start(data: dict[str, Any]) -> HttpResponse:
        overrides = data["overrides"] | {"classes": data["classes"], "steps": data["steps"]}
        sample_after = (
            {"tissue_class": data["sample_class"], "count": data["sample_count"] or PAPER_SYNTHETIC_COUNT}
            if data["sample_class"]
            else None
        )
        config = services.config_build(overrides=overrides, demo=data["demo"])
        run = services.training_run_start(
            dataset=data["dataset"], config=config, created_by=request.user, sample_after=sample_after
        )
        return redirect("gan:run_detail", run_id=run.pk)

    return form_page(request, form, "gan/run_new.html", start, services.RunError)


@study_manager_required
@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun.objects.select_related("dataset", "job"), pk=run_id)
    status = selectors.training_run_status(run=run)
    return render(
        request, "gan/run_detail.html", {"run": run, "status": status, "health_rules": HEALTH_RULES}
    )


@never_cache
@study_manager_required
@require_GET
def run_status(request: HttpRequest, run_id: int) -> JsonResponse:
    run = get_object_or_404(TrainingRun.objects.select_related("job"), pk=run_id)
    return JsonResponse(selectors.training_run_status(run=run))


@study_manager_required
@require_GET
def run_losses(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=run_id)
    history = selectors.training_run_history(run=run)
    return svg_response(
        line_chart_svg(
            x=[row.step for row in history],
            series={
                "D on real": [row.loss_d_real for row in history],
                "D on fake": [row.loss_d_fake for row in history],
                "G": [row.loss_g for row in history],
            },
            title=f"Losses of {run.name}",
            x_label="step",
            y_label="hinge loss" if run.config.get("loss") == "hinge" else "binary cross-entropy",
        )
    )


@study_manager_required
@require_GET
def run_grid(request: HttpRequest, run_id: int) -> FileResponse:
    run = get_object_or_404(TrainingRun, pk=run_id)
    if not run.grid:
        raise Http404("No samples yet.")
    return FileResponse(run.grid.open("rb"), content_type="image/png")


@study_manager_required
@require_http_methods(["GET", "POST"])
def sampling_new(request: HttpRequest) -> HttpResponse:
    initial = {"checkpoint": request.GET.get("checkpoint")} if request.method == "GET" else None
    form = SamplingRunForm(request.POST or None, initial=initial)

    def start(data: dict[str, Any]) -> HttpResponse:
        run = services.sampling_run_start(
            checkpoint=data["checkpoint"],
            tissue_class=data["tissue_class"],
            count=data["count"],
            seed=data["seed"],
            created_by=request.user,
        )
        return redirect("gan:sampling_detail", run_id=run.pk)

    return form_page(request, form, "gan/sampling_new.html", start, services.RunError)


@study_manager_required
@require_GET
def sampling_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(
        SamplingRun.objects.select_related("checkpoint__run", "dataset", "job"), pk=run_id
    )
    warnings = selectors.checkpoint_warnings(run=run.checkpoint.run, step=run.checkpoint.step)
    return render(request, "gan/sampling_detail.html", {"run": run, "warnings": warnings})
