from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gan import services
from gan.models import Dataset, Patch
from tests import images

pytestmark = pytest.mark.django_db


def _write(root: Path, relative: str, data: bytes) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_sample_import_gives_96_patches_without_back(sample_root: Path, media_root: Path) -> None:
    report = services.dataset_import(path=sample_root / "CRC-VAL-HE-7K")
    dataset = Dataset.objects.get(name="CRC-VAL-HE-7K")
    assert report.total_imported == 96
    assert dataset.patches.count() == 96
    assert set(dataset.patches.values_list("tissue_class", flat=True)) == {
        "ADI",
        "DEB",
        "LYM",
        "MUC",
        "MUS",
        "NORM",
        "STR",
        "TUM",
    }
    assert report.imported == {c: 12 for c in ["ADI", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]}
    assert report.not_selected == {"BACK": 12}
    assert any("left out 12 file(s) of class BACK" in line for line in report.lines())


def test_sample_import_with_all_classes_gives_108(sample_root: Path, media_root: Path) -> None:
    classes = ["ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]
    report = services.dataset_import(path=sample_root / "CRC-VAL-HE-7K", classes=classes)
    assert report.total_imported == 108
    assert Patch.objects.filter(tissue_class="BACK").count() == 12


def test_reimport_adds_nothing(sample_root: Path, media_root: Path) -> None:
    services.dataset_import(path=sample_root / "CRC-VAL-HE-7K")
    stored = sorted(p.name for p in media_root.rglob("*.png"))
    again = services.dataset_import(path=sample_root / "CRC-VAL-HE-7K")
    assert again.total_imported == 0
    assert sum(again.already_present.values()) == 96
    assert Patch.objects.count() == 96
    assert sorted(p.name for p in media_root.rglob("*.png")) == stored


def test_stored_patches_are_128px_png_through_storage(tiff_root: Path, media_root: Path) -> None:
    services.dataset_import(path=tiff_root / "CRC-VAL-HE-7K", classes=["LYM"])
    patch = Patch.objects.first()
    assert patch is not None
    with patch.image.open("rb") as handle:
        data = handle.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(images.png_chunk_types(data)) == {b"IHDR", b"IDAT", b"IEND"}
    assert patch.provenance == {"format": "TIFF", "size": [224, 224]}
    assert patch.source == "real"


def test_classes_option_restricts_the_import(sample_root: Path, media_root: Path) -> None:
    report = services.dataset_import(path=sample_root / "CRC-VAL-HE-7K", classes=["lym", "TUM"], name="two")
    assert report.imported == {"LYM": 12, "TUM": 12}


def test_unknown_class_option_is_refused_before_any_work(sample_root: Path, media_root: Path) -> None:
    with pytest.raises(services.DatasetImportError, match="unknown tissue class.*FOO"):
        services.dataset_import(path=sample_root / "CRC-VAL-HE-7K", classes=["LYM", "FOO"])
    assert not Dataset.objects.exists()


def test_zip_import_matches_folder_import(sample_root: Path, media_root: Path, tmp_path: Path) -> None:
    archive = tmp_path / "CRC-VAL-HE-7K.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for png in sorted((sample_root / "CRC-VAL-HE-7K").rglob("*.png")):
            zf.write(png, "CRC-VAL-HE-7K/" + png.relative_to(sample_root / "CRC-VAL-HE-7K").as_posix())
    report = services.dataset_import(path=archive)
    assert report.dataset_name == "CRC-VAL-HE-7K"
    assert report.total_imported == 96


def test_every_bad_file_gets_a_line_and_the_good_ones_are_imported(media_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    _write(root, "LYM/LYM-good1.tif", images.rgb_tiff(1))
    _write(root, "LYM/LYM-good2.png", images.rgb_png(2))
    _write(root, "LYM/LYM-truncated.tif", images.truncated_tiff(3))
    _write(root, "LYM/LYM-text.tif", b"not an image at all")
    _write(root, "LYM/LYM-16bit.png", images.sixteen_bit_png())
    _write(root, "LYM/LYM-rgba.png", images.rgba_png())
    _write(root, "LYM/LYM-grey.tif", images.grey_tiff())
    _write(root, "LYM/LYM-bomb.png", images.png_declaring(60_000, 60_000))
    _write(root, "LYM/notes.txt", b"hello")
    _write(root, "FOO/FOO-1.tif", images.rgb_tiff(4))
    _write(root, "TUM/TUM-1.tif", images.rgb_tiff(5))
    (root / "MUC").mkdir()
    report = services.dataset_import(path=root)

    assert report.imported == {"LYM": 2, "TUM": 1}
    reasons = {item["path"]: item["reason"] for item in report.skipped}
    assert "corrupt or truncated" in reasons["LYM/LYM-truncated.tif"]
    assert "not an image" in reasons["LYM/LYM-text.tif"]
    assert "16-bit" in reasons["LYM/LYM-16bit.png"]
    assert "alpha" in reasons["LYM/LYM-rgba.png"]
    assert "greyscale" in reasons["LYM/LYM-grey.tif"]
    assert "decompression bomb" in reasons["LYM/LYM-bomb.png"]
    assert "not an image file" in reasons["LYM/notes.txt"]
    assert "unknown class folder 'FOO'" in reasons["FOO/FOO-1.tif"]
    assert report.empty_classes == ["MUC"]
    assert any("empty class folder: MUC" in line for line in report.lines())
    assert Patch.objects.count() == 3


def test_duplicate_files_in_one_source_are_stored_once(media_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "dups"
    _write(root, "LYM/a.tif", images.rgb_tiff(7))
    _write(root, "LYM/b.png", images.rgb_png(7))  # same pixels, other container
    report = services.dataset_import(path=root)
    assert report.imported == {"LYM": 1}
    assert report.already_present == {"LYM": 1}


def test_empty_source_is_refused(media_root: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(services.DatasetImportError, match="no image files found"):
        services.dataset_import(path=tmp_path / "empty")
    assert not Dataset.objects.exists()


def test_missing_and_non_archive_sources_are_refused(media_root: Path, tmp_path: Path) -> None:
    with pytest.raises(services.DatasetImportError, match="does not exist"):
        services.dataset_import(path=tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(services.DatasetImportError, match="neither a folder nor a .zip"):
        services.dataset_import(path=tmp_path / "file.txt")


def test_zip_members_escaping_the_root_are_refused_and_nothing_is_written_outside(
    media_root: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("evil/LYM/LYM-ok.tif", images.rgb_tiff(1))
        zf.writestr("../LYM/LYM-escape.tif", images.rgb_tiff(2))
        zf.writestr("/tmp/LYM/LYM-absolute.tif", images.rgb_tiff(3))
        zf.writestr("evil/LYM/../../../LYM-dotdot.tif", images.rgb_tiff(4))
    before = set(tmp_path.parent.rglob("*"))
    report = services.dataset_import(path=archive)
    assert report.imported == {"LYM": 1}
    refused = [item for item in report.skipped if "escapes the archive" in item["reason"]]
    assert len(refused) == 3
    created = set(tmp_path.parent.rglob("*")) - before
    assert all(media_root in path.parents or path == media_root for path in created)
    assert not Path("/tmp/LYM/LYM-absolute.tif").exists()


def test_truncated_zip_member_is_skipped_not_fatal(media_root: Path, tmp_path: Path) -> None:
    archive = tmp_path / "broken.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("LYM/LYM-ok.tif", images.rgb_tiff(1))
        zf.writestr("LYM/LYM-zz-broken.tif", images.rgb_tiff(2))
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("LYM/LYM-zz-broken.tif")
    start = info.header_offset + 30 + len(info.filename)
    data[start + 100 : start + 400] = b"\x00" * 300  # corrupt the compressed bytes of the second member
    archive.write_bytes(bytes(data))
    report = services.dataset_import(path=archive)
    assert report.imported == {"LYM": 1}
    assert [item["path"] for item in report.skipped] == ["LYM/LYM-zz-broken.tif"]


def test_failure_mid_import_keeps_committed_batches(
    media_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "many"
    for index in range(10):
        _write(root, f"LYM/LYM-{index:02}.tif", images.rgb_tiff(100 + index))
    monkeypatch.setattr("gan.services.datasets.BATCH", 3)

    def crash(done: int, total: int) -> None:
        if done == 7:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        services.dataset_import(path=root, progress=crash)
    assert Patch.objects.count() == 6  # two batches of three were committed before the crash
    report = services.dataset_import(path=root)
    assert report.imported == {"LYM": 4}
    assert report.already_present == {"LYM": 6}
    assert Patch.objects.count() == 10


def test_import_into_a_synthetic_dataset_is_refused(media_root: Path, tmp_path: Path) -> None:
    Dataset.objects.create(name="gen", source="synthetic")
    _write(tmp_path / "x", "LYM/a.tif", images.rgb_tiff(1))
    with pytest.raises(services.DatasetImportError, match="holds synthetic patches"):
        services.dataset_import(path=tmp_path / "x", name="gen")


def test_import_path_must_stay_inside_the_import_root(settings, tmp_path: Path) -> None:
    settings.IMPORT_ROOT = tmp_path / "imports"
    (tmp_path / "imports" / "set").mkdir(parents=True)
    assert services.import_path_resolve(relative="set") == (tmp_path / "imports" / "set").resolve()
    with pytest.raises(services.DatasetImportError, match="outside the import folder"):
        services.import_path_resolve(relative="../../etc")
    with pytest.raises(services.DatasetImportError, match="does not exist"):
        services.import_path_resolve(relative="missing")


def test_demo_data_imports_cleanly(media_root: Path) -> None:
    root = Path(__file__).resolve().parents[2] / "demo" / "data" / "CRC-VAL-HE-7K"
    report = services.dataset_import(path=root, is_demo=True)
    assert report.total_imported == 96 and not report.skipped
    assert Dataset.objects.get(name="CRC-VAL-HE-7K").is_demo


def test_sample_and_demo_derivatives_are_identical(tiff_root: Path, media_root: Path) -> None:
    """The shipped demo PNGs are the pipeline's own output for the real TIFFs."""
    services.dataset_import(path=tiff_root / "CRC-VAL-HE-7K", name="tiff", classes=["LYM"])
    shutil.copytree(
        Path(__file__).resolve().parents[2] / "demo" / "data" / "CRC-VAL-HE-7K" / "LYM",
        media_root.parent / "png" / "LYM",
    )
    report = services.dataset_import(path=media_root.parent / "png", name="tiff", classes=["LYM"])
    assert report.total_imported == 10 and report.already_present == {"LYM": 2}


def test_zip_member_named_dot_is_skipped(media_root: Path, tmp_path: Path) -> None:
    archive = tmp_path / "dot.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(".", b"x")
        zf.writestr("LYM/LYM-1.tif", images.rgb_tiff(1))
    report = services.dataset_import(path=archive)
    assert report.imported == {"LYM": 1}
    assert {"path": ".", "reason": "empty member name"} in report.skipped


def test_an_import_can_keep_the_images_own_size_and_records_their_resolution(
    media_root: Path, tmp_path: Path
) -> None:
    """A 200 px set kept at 200 px (no resampling), its resolution recorded for the scale bar."""
    from PIL import Image

    folder = tmp_path / "diffusion" / "LYM"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    report = services.dataset_import(
        path=tmp_path / "diffusion", classes=["LYM"], size=None, source_microns_per_pixel=0.5
    )
    dataset = Dataset.objects.get(pk=report.dataset_id)
    assert report.size == 200 and dataset.patch_size == 200 and dataset.microns_per_pixel == 0.5
    assert dataset.patches.count() == 3
