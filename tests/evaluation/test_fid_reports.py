from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from core.jobs import job_run
from core.models import Job
from evaluation import services
from evaluation.models import FidReport
from tests.neural.test_fid import random_inception_weights

pytestmark = pytest.mark.django_db


def test_report_pipeline_end_to_end_with_random_weights(
    sampling_run: Any, settings: Any, tmp_path: Path, manager_client: Client
) -> None:
    settings.FID_WEIGHTS_PATH = random_inception_weights(tmp_path / "random.pth")
    report = services.fid_report_start(sampling_run=sampling_run, n_images=10)
    assert report.job.queue == "gpu" and report.real_dataset.name == "LYM+TUM"
    assert job_run(job_id=str(report.job_id), worker="w", body=services.fid_report_job) == "finished"
    report.refresh_from_db()
    assert report.fid is not None and report.fid >= 0 and report.kid_mean is not None
    assert report.protocol["n_real"] == report.protocol["n_synthetic"] == 10 and not report.standard
    page = manager_client.get(reverse("evaluation:fid_report", args=[report.pk])).content.decode()
    assert "Non-standard" in page and "torch-fidelity" in page


def test_missing_weights_fail_the_task_with_how_to_fix_it(
    sampling_run: Any, settings: Any, tmp_path: Path
) -> None:
    settings.FID_WEIGHTS_PATH = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    report = services.fid_report_start(sampling_run=sampling_run)
    assert job_run(job_id=str(report.job_id), worker="w", body=services.fid_report_job) == "failed"
    job = Job.objects.get(pk=report.job_id)
    assert "No Inception weights at" in job.error and "FID_WEIGHTS_PATH" in job.error


def test_a_corrupt_weights_file_fails_the_task(sampling_run: Any, settings: Any, tmp_path: Path) -> None:
    settings.FID_WEIGHTS_PATH = tmp_path / "broken.pth"
    settings.FID_WEIGHTS_PATH.write_bytes(b"not weights")
    report = services.fid_report_start(sampling_run=sampling_run)
    job_run(job_id=str(report.job_id), worker="w", body=services.fid_report_job)
    assert "corrupt or not a weights file" in Job.objects.get(pk=report.job_id).error


def test_sizes_are_checked_before_anything_is_queued(sampling_run: Any, manager_client: Client) -> None:
    with pytest.raises(services.ReportError, match="holds 12 patches, fewer than the 50"):
        services.fid_report_start(sampling_run=sampling_run, n_images=50)
    with pytest.raises(services.ReportError, match="real pool .* holds 12 LYM patches, fewer than the 13"):
        sampling_run.count = 13
        from gan.services import sampling as sampling_services

        sampling_services.sampling_run_execute(run=sampling_run, context=None, device_preference="cpu")
        services.fid_report_start(sampling_run=sampling_run)
    response = manager_client.post(
        reverse("evaluation:fid_report_new"), {"sampling_run": sampling_run.pk, "n_images": 50, "seed": 0}
    )
    assert response.status_code == 400 and b"fewer than the 50" in response.content
    assert not FidReport.objects.exists()


def test_a_larger_real_set_is_compared_at_128_px_and_a_smaller_is_refused(
    sampling_run: Any, settings: Any, tmp_path: Path, tiff_root: Path, media_root: Path
) -> None:
    """Real tiles kept at their own 224 px against the run's 128 px samples: both sides read at 128 px
    (the larger downsampled by the import's filter); a real set smaller than that is refused up front."""
    from gan.models import Dataset
    from gan.services import dataset_import

    settings.FID_WEIGHTS_PATH = random_inception_weights(tmp_path / "random.pth")
    imported = dataset_import(path=tiff_root / "CRC-VAL-HE-7K", name="224 px", classes=["LYM"], size=None)
    larger = Dataset.objects.get(pk=imported.dataset_id)
    assert larger.patch_size == 224
    report = services.fid_report_start(sampling_run=sampling_run, real_dataset=larger, n_images=2)
    assert job_run(job_id=str(report.job_id), worker="w", body=services.fid_report_job) == "finished"
    report.refresh_from_db()
    assert report.fid is not None and report.protocol["n_real"] == 2
    Dataset.objects.filter(pk=larger.pk).update(patch_size=96)
    larger.refresh_from_db()
    with pytest.raises(services.ReportError, match="holds 96 px patches.*never upsampled"):
        services.fid_report_start(sampling_run=sampling_run, real_dataset=larger, n_images=2)
