"""FID, KID and precision/recall reports of sampling runs, as gpu-queue jobs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from core.jobs import JobError, job_start
from core.models import Job
from core.roles import UserLike
from evaluation import jobs
from evaluation.models import FidReport
from evaluation.selectors import classifier_for
from evaluation.services.classifier import classifier_load
from evaluation.services.common import ReportError, patches_load, real_pool
from gan.imaging import PATCH_SIZE
from gan.models import Dataset, SamplingRun

if TYPE_CHECKING:
    from core.jobs import JobContext


def fid_report_start(
    *,
    sampling_run: SamplingRun,
    real_dataset: Dataset | None = None,
    n_images: int | None = None,
    seed: int = 0,
    created_by: UserLike | None = None,
    device: str = "auto",
) -> FidReport:
    """Check the sizes, then queue the report (on the gpu queue: Inception runs best there)."""
    real_dataset = real_dataset or sampling_run.checkpoint.run.dataset
    available = sampling_run.patches.count()
    n = n_images or available
    if available == 0:
        raise ReportError("The sampling run holds no patches yet.")
    if n > available:
        raise ReportError(
            f"The sampling run holds {available} patches, fewer than the {n} the report asks for."
        )
    real_available = real_pool(real_dataset, sampling_run.tissue_class).count()
    if real_available < n:
        raise ReportError(
            f"The real pool ({real_dataset.name}) holds {real_available} {sampling_run.tissue_class} "
            "patches, "
            f"fewer than the {n} synthetic ones: compare equal numbers, or ask for fewer."
        )
    if n < 2:
        raise ReportError("A report needs at least 2 images on each side.")
    if real_dataset.patch_size < PATCH_SIZE:
        raise ReportError(
            f"{real_dataset.name} holds {real_dataset.patch_size} px patches: the report compares "
            f"{PATCH_SIZE} px patches (larger ones downsampled, smaller ones never upsampled)."
        )
    record = FidReport(sampling_run=sampling_run, real_dataset=real_dataset, n_images=n, seed=seed)
    title = f"FID: {sampling_run.tissue_class} samples of {sampling_run.checkpoint.run.name} (N = {n})"
    return job_start(kind=jobs.FID_REPORT, record=record, title=title, created_by=created_by, device=device)


def fid_report_job(job: Job, context: JobContext) -> dict[str, Any]:
    """The body of the FID task: draw the images, compute, store."""
    from neural.fid import FidError, fid_compute
    from neural.runtime import pick_device

    report = FidReport.objects.select_related("sampling_run", "real_dataset").get(job=job)
    device = pick_device(job.params.get("device", "auto"))
    run = report.sampling_run
    rng = np.random.default_rng(report.seed)
    synthetic_names = sorted(run.patches.values_list("image", flat=True))
    real_names = sorted(real_pool(report.real_dataset, run.tissue_class).values_list("image", flat=True))
    if len(synthetic_names) < report.n_images or len(real_names) < report.n_images:
        raise JobError(
            f"Too few patches: {len(synthetic_names)} synthetic and {len(real_names)} real "
            f"for N = {report.n_images}."
        )
    pick = lambda names: [names[i] for i in sorted(rng.choice(len(names), report.n_images, replace=False))]  # noqa: E731
    context.progress(
        0.1, f"Loading {report.n_images} synthetic and {report.n_images} real patches", force=True
    )
    synthetic, real = patches_load(pick(synthetic_names)), patches_load(pick(real_names))
    classifier = classifier_for(dataset=report.real_dataset, tissue_class=run.tissue_class)
    if classifier is not None:
        from neural.classifier import second_opinion

        context.progress(0.2, "Second opinion: the tissue classifier's features", force=True)
        report.second_opinion = second_opinion(
            trained=classifier_load(classifier),
            real=real,
            synthetic=synthetic,
            tissue_class=run.tissue_class,
            device=device,
        ) | {"classifier": classifier.pk}
        report.save(update_fields=["second_opinion"])  # kept even if the Inception step fails below
    context.progress(0.3, "Computing Inception features", force=True)
    try:
        result = fid_compute(
            real=real,
            synthetic=synthetic,
            weights_path=Path(settings.FID_WEIGHTS_PATH),
            device=device,
        )
    except FidError as exc:
        raise JobError(str(exc)) from None
    report.fid, report.kid_mean, report.kid_std = result.fid, result.kid_mean, result.kid_std
    report.precision, report.recall = result.precision, result.recall
    report.protocol = result.protocol | {"seed": report.seed, "real_dataset": report.real_dataset.name}
    report.save()
    return {"fid": result.fid, "kid_mean": result.kid_mean, "standard": result.protocol["standard_weights"]}
