from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from core.models import Job
from gan import services

pytestmark = pytest.mark.django_db


def test_import_form_needs_exactly_one_source(manager_client: Client) -> None:
    response = manager_client.post(reverse("gan:dataset_import"), {"classes": ["LYM"]})
    assert response.status_code == 200
    assert b"either a .zip to upload or a path on the server" in response.content
    assert not Job.objects.exists()


def test_import_by_server_path_queues_a_job(
    manager_client: Client, settings: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    settings.IMPORT_ROOT = tmp_path
    (tmp_path / "set" / "LYM").mkdir(parents=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = manager_client.post(
            reverse("gan:dataset_import"), {"server_path": "set", "classes": ["LYM"]}
        )
    job = Job.objects.get()
    assert response["Location"] == reverse("job_detail", args=[job.pk])
    assert job.params["classes"] == ["LYM"] and job.params["path"] == str((tmp_path / "set").resolve())
    assert len(callbacks) == 1


def test_import_by_path_outside_the_root_is_refused(
    manager_client: Client, settings: Any, tmp_path: Path
) -> None:
    settings.IMPORT_ROOT = tmp_path / "root"
    (tmp_path / "root").mkdir()
    response = manager_client.post(reverse("gan:dataset_import"), {"server_path": "../", "classes": ["LYM"]})
    assert b"outside the import folder" in response.content
    assert not Job.objects.exists()


def test_upload_must_be_a_zip(manager_client: Client) -> None:
    upload = io.BytesIO(b"x")
    upload.name = "patches.tar"
    response = manager_client.post(reverse("gan:dataset_import"), {"archive": upload, "classes": ["LYM"]})
    assert b"Upload a .zip archive" in response.content


def test_dataset_pages_show_counts_and_patches(
    manager_client: Client, sample_root: Path, media_root: Path
) -> None:
    report = services.dataset_import(path=sample_root / "CRC-VAL-HE-7K", classes=["LYM"])
    listing = manager_client.get(reverse("gan:dataset_list"))
    assert b"CRC-VAL-HE-7K" in listing.content and b"LYM 12" in listing.content
    detail = manager_client.get(reverse("gan:dataset_detail", args=[report.dataset_id]))
    assert detail.status_code == 200
    image_url = reverse("gan:patch_image", args=[detail.context["sample"]["LYM"][0].pk])
    assert image_url.encode() in detail.content
    image = manager_client.get(image_url)
    assert image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content)[:4] == b"\x89PNG"


def test_experts_cannot_fetch_patch_images_directly(
    expert_client: Client, sample_root: Path, media_root: Path
) -> None:
    services.dataset_import(path=sample_root / "CRC-VAL-HE-7K", classes=["LYM"])
    from gan.models import Patch

    patch = Patch.objects.first()
    assert patch is not None
    assert expert_client.get(reverse("gan:patch_image", args=[patch.pk])).status_code == 403


def test_the_import_page_takes_a_resolution_and_can_keep_the_images_own_size(
    manager_client: Client, settings: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    settings.IMPORT_ROOT = tmp_path
    (tmp_path / "set" / "LYM").mkdir(parents=True)
    form = {"server_path": "set", "classes": ["LYM"], "native_size": "on", "microns_per_pixel": "0.5"}
    with django_capture_on_commit_callbacks(execute=False):
        manager_client.post(reverse("gan:dataset_import"), form)
    job = Job.objects.get()
    assert job.params["size"] is None and job.params["microns_per_pixel"] == 0.5
    both = manager_client.post(reverse("gan:dataset_import"), form | {"size": "128"})
    assert "Give a patch size or keep the images&#x27; own size, not both." in both.content.decode()
    page = manager_client.get(reverse("gan:dataset_import")).content.decode()
    assert "µm per pixel" in page and "Keep the images" in page and "--" not in page.split("<main")[1]


def test_an_uploaded_set_names_its_file_and_says_whether_readers_get_a_scale_bar(
    manager_client: Client, sample_root: Path, media_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """The dataset page says where an upload came from by the name it was sent under (not the worker's
    cached copy), and what its resolution means for the reading page."""
    import zipfile

    from core.jobs import job_run
    from gan.models import Dataset

    def upload(name: str, form: dict[str, Any]) -> Any:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            for file in sorted((sample_root / "CRC-VAL-HE-7K" / "LYM").iterdir())[:3]:
                zf.write(file, f"LYM/{name}-{file.name}")
        buffer.seek(0)
        buffer.name = f"{name}.zip"
        with django_capture_on_commit_callbacks(execute=False):
            manager_client.post(reverse("gan:dataset_import"), {"archive": buffer, "classes": ["LYM"]} | form)
        job = Job.objects.latest("created_at")
        assert job_run(job_id=str(job.pk), worker="test", body=services.dataset_import_job) == "finished"
        dataset = Dataset.objects.get(name=name)
        return manager_client.get(reverse("gan:dataset_detail", args=[dataset.pk])).content.decode()

    with_resolution = upload("outside-set", {"native_size": "on", "microns_per_pixel": "0.5"})
    assert "Imported from upload outside-set.zip." in with_resolution
    assert "cache" not in with_resolution.split("<main")[1]
    assert "Resolution 0.5 µm per pixel (128 px is 64 µm): readers get a scale bar." in with_resolution
    without = upload("other-set", {"synthetic": "on", "generator": "A diffusion model"})
    assert "Resolution not given: readers get no scale bar." in without
    assert "<dt>Origin</dt><dd>upload other-set.zip</dd>" in without
