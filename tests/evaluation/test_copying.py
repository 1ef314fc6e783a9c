"""The copying check: noised training patches are flagged, new tissue is not; the job, its page and
the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from analysis import copying
from core.jobs import job_run
from evaluation import services
from evaluation.models import CopyingCheck
from gan.models import Dataset, Source
from tests.demo_patches import demo_pool
from tests.turing.fixtures import patches_from_arrays, study_for


@pytest.fixture(scope="module")
def real() -> np.ndarray:
    return demo_pool(2)


def _noised(images: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(-4, 5, size=images.shape)
    return np.clip(images.astype(int) + noise, 0, 255).astype(np.uint8)


def test_noised_training_patches_are_flagged_and_new_ones_are_not(real: np.ndarray) -> None:
    training, held_out = real[:80], real[80:]
    features = copying.pixel_features(training)
    ids = list(range(len(training)))
    copies = copying.check_space(
        "pixels",
        copying.pixel_features(_noised(training[:12], 0)),
        features,
        synthetic_ids=[f"copy {k}" for k in range(12)],
        training_ids=ids,
    )
    assert copies.n_flagged == 12
    assert sorted(p["nearest"] for p in copies.flagged) == list(range(12))  # each found its original
    fresh = copying.check_space(
        "pixels",
        copying.pixel_features(held_out),
        features,
        synthetic_ids=list(range(len(held_out))),
        training_ids=ids,
    )
    assert fresh.n_flagged <= 1  # about 1% fall under the line by chance
    assert fresh.synthetic_quantiles["q50"] > copies.synthetic_quantiles["q50"] * 5


def test_nearest_matches_a_direct_search() -> None:
    rng = np.random.default_rng(0)
    queries, refs = rng.normal(size=(37, 20)), rng.normal(size=(301, 20))
    distances, indices = copying.nearest(queries, refs, batch=8)
    direct = np.linalg.norm(queries[:, None, :] - refs[None, :, :], axis=2)
    assert np.array_equal(indices, direct.argmin(axis=1))
    assert distances == pytest.approx(direct.min(axis=1), rel=1e-4)
    own, own_index = copying.nearest(refs[:5], refs, exclude_self=True)
    assert all(own_index != np.arange(5)) and (own > 0).all()


@pytest.mark.django_db
def test_the_copying_job_page_and_report(
    real: np.ndarray, media_root: Path, manager_client: Client, expert: Any
) -> None:
    training = patches_from_arrays("training LYM", real[:40], source=Source.REAL)
    copies = np.concatenate([_noised(real[:6], 1), real[60:66]])  # six copies, six new patches
    synthetic = patches_from_arrays("suspicious set", copies, source=Source.SYNTHETIC)
    with pytest.raises(services.EvaluationError, match="was not sampled here: name the real dataset"):
        services.copying_check_start(synthetic_dataset=synthetic)
    check = services.copying_check_start(
        synthetic_dataset=synthetic, reference_dataset=training, enqueue=False
    )
    assert job_run(job_id=str(check.job_id), worker="w", body=services.copying_check_job) == "finished"
    check = CopyingCheck.objects.get(pk=check.pk)
    space = check.results["spaces"]["pixels"]
    first_six = set(synthetic.patches.order_by("id").values_list("id", flat=True)[:6])
    assert set(space["flagged_ids"]) == first_six
    page = manager_client.get(reverse("evaluation:copying_check", args=[check.pk])).content.decode()
    assert "6 of 12</strong> synthetic patches" in page and page.count('alt="Its nearest training patch') == 6
    study = study_for(training, synthetic, [expert], name="copying", items_per_reader=24, ask_profile=True)
    report = manager_client.get(reverse("evaluation:study_report", args=[study.pk])).content.decode()
    assert "6 of this study's items flagged as near-copies" in report
    assert Dataset.objects.filter(name="suspicious set").exists()


@pytest.mark.django_db
def test_a_larger_outside_set_is_compared_at_128_px(real: np.ndarray, media_root: Path) -> None:
    """An outside generator's 200 px set against 128 px training patches: both read at 128 px (the larger
    downsampled by the import's filter), so enlarged copies of training patches are still found."""
    from PIL import Image

    def enlarged(images: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(Image.fromarray(i).resize((200, 200), Image.Resampling.BICUBIC)) for i in images]

    training = patches_from_arrays("training 128", real[:40], source=Source.REAL)
    outside = patches_from_arrays(
        "outside 200", enlarged(real[:4]) + enlarged(real[60:64]), source=Source.SYNTHETIC
    )
    check = services.copying_check_start(synthetic_dataset=outside, reference_dataset=training, enqueue=False)
    assert job_run(job_id=str(check.job_id), worker="w", body=services.copying_check_job) == "finished"
    flagged = CopyingCheck.objects.get(pk=check.pk).results["spaces"]["pixels"]["flagged_ids"]
    assert set(flagged) == set(outside.patches.order_by("id").values_list("id", flat=True)[:4])
    small = patches_from_arrays("outside 96", [i[:96, :96] for i in real[:2]], source=Source.SYNTHETIC)
    with pytest.raises(services.EvaluationError, match="never upsampled"):
        services.copying_check_start(synthetic_dataset=small, reference_dataset=training)
