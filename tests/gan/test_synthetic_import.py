"""Synthetic sets made outside the product: imported like real ones, with their generator's record."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from core.models import Job
from gan import services
from gan.models import Dataset, Patch, Source
from tests import images

pytestmark = pytest.mark.django_db


def _folder(root: Path, n: int = 3, size: int = 256) -> Path:
    for k in range(n):
        path = root / "LYM" / f"sample-{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(images.rgb_png(k, size=size))
    (root / "LYM" / "notes.txt").write_text("not an image")
    return root


def test_a_synthetic_folder_imports_with_its_generator_record(media_root: Path, tmp_path: Path) -> None:
    weights = tmp_path / "model.pkl"
    weights.write_bytes(b"weights of a generator")
    generator = services.generator_describe(
        name="StyleGAN2-ADA lymphocytes",
        kind="gan",
        description="trained on NCT-CRC-HE-100K LYM, 25k kimg",
        checkpoint_file=weights,
        sampling='{"truncation": 0.7, "seeds": "0-2"}',
    )
    report = services.dataset_import(path=_folder(tmp_path / "set"), name="stylegan", generator=generator)
    dataset = Dataset.objects.get(name="stylegan")
    assert dataset.source == Source.SYNTHETIC and dataset.patch_size == 128
    assert set(Patch.objects.filter(dataset=dataset).values_list("source", flat=True)) == {Source.SYNTHETIC}
    assert report.imported == {"LYM": 3} and len(report.skipped) == 1  # the text file, named in the report
    assert "notes.txt" in "\n".join(report.lines()) and "(synthetic, 128 px)" in report.lines()[0]
    record = dataset.generator
    assert record["name"] == "StyleGAN2-ADA lymphocytes" and record["kind"] == "GAN"
    assert record["checkpoint_sha256"] == hashlib.sha256(b"weights of a generator").hexdigest()
    assert record["sampling"] == {"truncation": 0.7, "seeds": "0-2"}
    assert record["origin"] == str(tmp_path / "set")  # where the images came from, by default


def test_a_synthetic_zip_imports_at_another_size(media_root: Path, tmp_path: Path) -> None:
    folder = _folder(tmp_path / "set", n=2)
    archive = tmp_path / "diffusion.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*.png")):
            zf.write(path, path.relative_to(folder).as_posix())
    generator = services.generator_describe(name="LDM", kind="Diffusion", origin="lab server")
    services.dataset_import(path=archive, generator=generator, size=224)
    dataset = Dataset.objects.get(name="diffusion")
    assert dataset.patch_size == 224 and dataset.generator["kind"] == "diffusion"
    assert dataset.generator["origin"] == "lab server"
    with Patch.objects.filter(dataset=dataset).first().image.open("rb") as handle:  # type: ignore[union-attr]
        assert images.png_size(handle.read()) == (224, 224)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": " "}, "needs the generator's name"),
        ({"name": "g", "kind": "vae"}, "unknown generator kind 'vae'"),
        ({"name": "g", "sampling": "{truncation: 0.7}"}, "not valid JSON"),
        ({"name": "g", "sampling": "[1, 2]"}, "must be a JSON object"),
        ({"name": "g", "checkpoint_file": Path("/nonexistent/model.pt")}, "cannot read the checkpoint file"),
    ],
)
def test_a_bad_generator_record_is_refused_by_name(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(services.DatasetImportError, match=message):
        services.generator_describe(**kwargs)


def test_kinds_and_sizes_are_never_mixed_in_one_dataset(media_root: Path, tmp_path: Path) -> None:
    folder = _folder(tmp_path / "set", n=1)
    services.dataset_import(path=folder, name="real set")
    generator = services.Generator(name="g")
    with pytest.raises(services.DatasetImportError, match="holds real patches: a synthetic import cannot"):
        services.dataset_import(path=folder, name="real set", generator=generator)
    services.dataset_import(path=folder, name="fake set", generator=generator)
    with pytest.raises(services.DatasetImportError, match="holds synthetic patches: a real import cannot"):
        services.dataset_import(path=folder, name="fake set")
    with pytest.raises(
        services.DatasetImportError, match="holds 128 px patches, this import asks for 224 px"
    ):
        services.dataset_import(path=folder, name="fake set", generator=generator, size=224)
    with pytest.raises(services.DatasetImportError, match="a patch size must be from 32 to 1024 px"):
        services.dataset_import(path=folder, name="other", size=4096)
    assert Patch.objects.count() == 2  # nothing was written by the refused imports


def test_import_patches_synthetic_command(media_root: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    call_command(
        "import_patches",
        str(_folder(tmp_path / "set")),
        "--synthetic",
        "--generator",
        "last year's GAN",
        "--generator-kind",
        "GAN",
        "--sampling",
        json.dumps({"psi": 1.0}),
        "--classes",
        "LYM",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert "Dataset 'set' (synthetic, 128 px)" in out.getvalue()
    assert Dataset.objects.get(name="set").generator["sampling"] == {"psi": 1.0}
    with pytest.raises(CommandError, match="--generator describe\\(s\\) a synthetic set: add --synthetic"):
        call_command("import_patches", str(tmp_path / "set"), "--generator", "g", stderr=io.StringIO())
    with pytest.raises(CommandError, match="needs the generator's name"):
        call_command("import_patches", str(tmp_path / "set"), "--synthetic", stderr=io.StringIO())


def test_the_import_page_queues_a_synthetic_import(
    manager_client: Client, settings: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    settings.IMPORT_ROOT = tmp_path
    _folder(tmp_path / "set")
    form = {"server_path": "set", "classes": ["LYM"], "synthetic": "on", "generator": "DiffPath"}
    with django_capture_on_commit_callbacks(execute=False):
        response = manager_client.post(reverse("gan:dataset_import"), form | {"generator_kind": "diffusion"})
    job = Job.objects.get()
    assert response["Location"] == reverse("job_detail", args=[job.pk])
    assert job.params["generator"]["name"] == "DiffPath" and job.params["generator"]["kind"] == "diffusion"
    refused = manager_client.post(reverse("gan:dataset_import"), form | {"synthetic": "", "name": "x"})
    assert b"describes a synthetic set: tick this box" in refused.content
    assert Job.objects.count() == 1
