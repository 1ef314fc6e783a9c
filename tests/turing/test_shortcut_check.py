"""The shortcut check in the product: the builder's preview on the pools, the study's own on its
items as shown, and harmonisation recorded in the protocol and seen by the check."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from gan import imaging
from gan.models import Dataset, Source
from tests.turing.fixtures import builder_form, patches_from_arrays, study_for
from turing.models import Study
from turing.services import shortcut_check_pools, study_protocol, study_shortcut_check

pytestmark = pytest.mark.django_db
DEMO = Path(__file__).resolve().parents[2] / "demo" / "data"


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


@pytest.fixture
def pools(media_root: Path) -> tuple[Dataset, Dataset]:
    """Real patches, and 'synthetic' ones that are other real patches carrying JPEG traces."""
    files = sorted(p for p in DEMO.rglob("*.png") if p.parent.name != "BACK")
    images = [np.asarray(Image.open(p).convert("RGB")) for p in files]
    order = np.random.default_rng(1).permutation(len(images))
    half = len(images) // 2
    real = patches_from_arrays("clean", [images[i] for i in order[:half]], source=Source.REAL)
    traced = patches_from_arrays(
        "traced", [_jpeg(images[i], 50) for i in order[half : 2 * half]], source=Source.SYNTHETIC
    )
    return real, traced


def test_the_pools_check_warns_and_harmonising_takes_the_traces_away(pools: tuple[Dataset, Dataset]) -> None:
    real, traced = pools
    raw = shortcut_check_pools(tissue_class="LYM", real_datasets=[real], synthetic_datasets=[traced])
    assert raw["n_real"] == raw["n_synthetic"] == 52  # half of the 104 demo patches each, all labelled LYM
    assert raw["families"]["JPEG/resampling traces"]["value"] > 0.8 and raw["warning"]
    harmonised = shortcut_check_pools(
        tissue_class="LYM", real_datasets=[real], synthetic_datasets=[traced], jpeg_quality=50
    )
    assert (
        harmonised["families"]["JPEG/resampling traces"]["value"]
        < raw["families"]["JPEG/resampling traces"]["value"] - 0.2
    )


def test_a_study_checks_its_items_as_shown_and_records_its_harmonisation(
    pools: tuple[Dataset, Dataset], manager_client: Client, expert: Any
) -> None:
    real, traced = pools
    study = study_for(
        real,
        traced,
        [expert],
        name="harmonised",
        items_per_reader=40,
        harmonise_jpeg_quality=50,
        ask_profile=True,
    )
    assert study_protocol(study=study)["settings"]["harmonise_jpeg_quality"] == 50
    item = study.items.select_related("patch", "image").first()
    assert item is not None
    with item.patch.image.open("rb") as handle:
        stored = imaging.decode_png_array(handle.read())
    shown = imaging.decode_png_array(bytes(item.image.png))
    assert np.array_equal(shown, imaging.harmonised(stored, 50)) and not np.array_equal(shown, stored)
    check = study_shortcut_check(study=study)
    assert check["scope"] == "items" and check["n_real"] == check["n_synthetic"] == 20
    study.refresh_from_db()
    assert study.shortcut_check == check  # made once, then stored
    page = manager_client.get(reverse("turing:study_detail", args=[study.pk])).content.decode()
    assert "Shortcut check" in page and "re-encoded as JPEG at quality 50" in page
    report = manager_client.get(reverse("evaluation:study_report", args=[study.pk])).content.decode()
    assert "Shortcut check" in report and "Cross-validated ROC AUC" in report


@pytest.fixture
def tinted(media_root: Path) -> tuple[Dataset, Dataset]:
    """Real patches, and 'synthetic' ones that are other real patches with a colour cast only."""
    files = sorted(p for p in DEMO.rglob("*.png") if p.parent.name != "BACK")
    images = [np.asarray(Image.open(p).convert("RGB")).astype(float) for p in files]
    order = np.random.default_rng(2).permutation(len(images))
    half = len(images) // 2
    cast = np.array([-16.0, -32.0, 0.0])  # less red and green: a stain difference (nothing clips at white)
    real = patches_from_arrays(
        "clean", [images[i].astype(np.uint8) for i in order[:half]], source=Source.REAL
    )
    casted = [np.clip(images[i] + cast, 0, 255).astype(np.uint8) for i in order[half : 2 * half]]
    return real, patches_from_arrays("tinted", casted, source=Source.SYNTHETIC)


def test_a_colour_shortcut_is_advised_stain_normalisation_which_takes_it_away(
    tinted: tuple[Dataset, Dataset], manager_client: Client, expert: Any
) -> None:
    """A colour cast alone separates the sets: the advice is stain normalisation (not JPEG, which cannot
    remove a colour difference); the builder refuses to build it without an explicit yes; with the
    study's Reinhard normalisation (every item alike) the colour families no longer separate them."""
    real, casted = tinted
    raw = shortcut_check_pools(tissue_class="LYM", real_datasets=[real], synthetic_datasets=[casted])
    assert raw["strongest"].startswith(("colour", "stain")) and raw["severe"]
    assert "normalise the stain colour" in raw["warning"] and "cannot remove a colour" in raw["warning"]
    normalised = shortcut_check_pools(
        tissue_class="LYM", real_datasets=[real], synthetic_datasets=[casted], stain=True
    )
    for family in ("colour (RGB)", "colour (HSV)", "stain (HED)"):
        assert normalised["families"][family]["value"] < raw["families"][family]["value"] - 0.2, family
    form = builder_form(real, casted, expert, items_per_reader=20)
    form.pop("shortcut_confirmed")
    refused = manager_client.post(reverse("turing:study_new"), form | {"create": "1"})
    assert "Build it despite a near-certain shortcut" in refused.content.decode()
    assert "almost surely" in refused.content.decode() and not Study.objects.exists()
    built = manager_client.post(
        reverse("turing:study_new"),
        form | {"create": "1", "stain_normalisation": "on", "shortcut_confirmed": "on"},
    )
    assert built.status_code == 302
    study = Study.objects.get()
    assert len(study.stain_target) == 2 and study_protocol(study=study)["settings"]["stain_target"]
    item = study.items.filter(truth="synthetic").select_related("patch", "image").first()
    with item.patch.image.open("rb") as handle:
        stored = imaging.decode_png_array(handle.read())
    shown = imaging.decode_png_array(bytes(item.image.png))
    assert np.abs(shown.astype(int) - stored.astype(int)).mean() > 3  # the cast was taken off
