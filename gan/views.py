from __future__ import annotations

import uuid

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from core.roles import study_manager_required
from gan import selectors, services
from gan.forms import DatasetImportForm
from gan.models import Dataset, Patch


@study_manager_required
@require_GET
def dataset_list(request: HttpRequest) -> HttpResponse:
    return render(request, "gan/dataset_list.html", {"datasets": selectors.datasets_overview()})


@study_manager_required
@require_GET
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    return render(
        request,
        "gan/dataset_detail.html",
        {
            "dataset": dataset,
            "counts": selectors.dataset_class_counts(dataset=dataset),
            "sample": selectors.dataset_sample_patches(dataset=dataset),
        },
    )


@study_manager_required
@require_http_methods(["GET", "POST"])
def dataset_import(request: HttpRequest) -> HttpResponse:
    form = DatasetImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data.get("archive"):
                uploads = settings.DATA_DIR / "uploads"
                uploads.mkdir(parents=True, exist_ok=True)
                target = uploads / f"{uuid.uuid4().hex}.zip"
                with target.open("wb") as out:
                    for chunk in data["archive"].chunks():
                        out.write(chunk)
                name = data["name"] or data["archive"].name.rsplit("/", 1)[-1].removesuffix(".zip")
                job = services.dataset_import_start(
                    path=target,
                    name=name,
                    classes=data["classes"],
                    created_by=request.user,
                    delete_source_after=True,
                )
            else:
                path = services.import_path_resolve(relative=data["server_path"])
                job = services.dataset_import_start(
                    path=path, name=data["name"] or None, classes=data["classes"], created_by=request.user
                )
        except services.DatasetImportError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("job_detail", job_id=job.pk)
    return render(request, "gan/dataset_import.html", {"form": form, "import_root": settings.IMPORT_ROOT})


@study_manager_required
@require_GET
def patch_image(request: HttpRequest, patch_id: int) -> FileResponse:
    """A patch's PNG for study managers (experts see patches only through blinded study items)."""
    patch = get_object_or_404(Patch, pk=patch_id)
    response = FileResponse(patch.image.open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response
