from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from core.jobs import job_run
from core.models import Job
from evaluation import services
from evaluation.models import Classifier, FidReport
from neural import classifier
from neural.data import PackedPatches

CPU = torch.device("cpu")


def _two_colours(n: int = 16) -> PackedPatches:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 60, size=(n, 128, 128, 3), dtype=np.uint8)
    images[n // 2 :, :, :, 0] += 150  # the second class is red
    labels = np.array([0] * (n // 2) + [1] * (n // 2))
    return PackedPatches.from_arrays(images, labels, ("LYM", "TUM"))


def test_classifier_learns_an_easy_split_and_gives_a_second_opinion() -> None:
    data = _two_colours()
    config = classifier.ClassifierConfig(classes=("LYM", "TUM"), epochs=8, batch_size=8, width=8, seed=1)
    trained = classifier.train_classifier(config=config, data=data, device=CPU)
    assert trained.metrics["validation_accuracy"] == 1.0
    lym, tum = data.images[:8], data.images[8:]
    same = classifier.second_opinion(trained=trained, real=lym, synthetic=lym, tissue_class="LYM", device=CPU)
    assert same["frechet_distance"] == pytest.approx(0.0, abs=1e-6) and same["share_assigned_to_class"] == 1.0
    other = classifier.second_opinion(
        trained=trained, real=lym, synthetic=tum, tissue_class="LYM", device=CPU
    )
    assert other["frechet_distance"] > 0.1 and other["share_assigned_to_class"] == 0.0
    # Precision and recall on the k-NN manifolds of the classifier's features: the same set covers itself,
    # another class's patches neither look like the real ones nor cover them.
    assert same["precision"] == same["recall"] == 1.0
    assert other["precision"] == other["recall"] == 0.0
    low, high = other["frechet_distance_ci"]
    assert low <= other["frechet_distance"] <= high or low > 0.1  # a resampled set is a biased estimate


def test_precision_and_recall_see_collapse_as_low_recall() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 16))
    collapsed = real[:5].repeat(40, axis=0) + rng.normal(scale=0.01, size=(200, 16))
    precision, recall = classifier._precision_recall(collapsed, real)
    assert precision > 0.9 and recall < 0.2  # what it makes is real-like, but it covers little
    fd_ci, (p, p_ci), (r, r_ci) = classifier._fidelity_with_intervals(collapsed, real, seed=1)
    assert p_ci[0] <= p <= p_ci[1] + 0.05 and r < 0.2 and r_ci[1] < 0.3 and fd_ci[0] > 0


def test_same_seed_trains_the_same_classifier() -> None:
    config = classifier.ClassifierConfig(classes=("LYM", "TUM"), epochs=2, batch_size=8, width=8, seed=3)
    a = classifier.train_classifier(config=config, data=_two_colours(), device=CPU)
    b = classifier.train_classifier(config=config, data=_two_colours(), device=CPU)
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)


@pytest.mark.django_db
def test_fid_report_shows_the_second_opinion_even_without_inception_weights(
    sampling_run: Any, settings: Any, tmp_path: Path
) -> None:
    real_dataset = sampling_run.checkpoint.run.dataset
    trained = services.classifier_train_start(dataset=real_dataset, epochs=1)
    assert job_run(job_id=str(trained.job_id), worker="w", body=services.classifier_train_job) == "finished"
    trained.refresh_from_db()
    assert trained.weights and "validation_accuracy" in trained.metrics
    settings.FID_WEIGHTS_PATH = tmp_path / "missing.pth"
    report = services.fid_report_start(sampling_run=sampling_run)
    assert job_run(job_id=str(report.job_id), worker="w", body=services.fid_report_job) == "failed"
    report = FidReport.objects.get(pk=report.pk)
    assert "No Inception weights" in Job.objects.get(pk=report.job_id).error
    opinion = report.second_opinion
    assert opinion["classifier"] == trained.pk and opinion["n_synthetic"] == 12
    assert opinion["frechet_distance"] >= 0 and 0 <= opinion["share_assigned_to_class"] <= 1


@pytest.mark.django_db
def test_classifier_refuses_classes_the_dataset_lacks(lym_tum: Any) -> None:
    with pytest.raises(services.ClassifierError, match="no patches of class.*ADI"):
        services.classifier_train_start(dataset=lym_tum, classes=["LYM", "ADI"])
    assert not Classifier.objects.exists()


@pytest.mark.django_db
def test_classifier_refuses_patches_smaller_than_it_reads(lym_tum: Any) -> None:
    type(lym_tum).objects.filter(pk=lym_tum.pk).update(patch_size=96)
    lym_tum.refresh_from_db()
    with pytest.raises(
        services.ClassifierError, match="holds 96 px patches: the tissue classifier.*never upsampled"
    ):
        services.classifier_train_start(dataset=lym_tum, classes=["LYM"])
    assert not Classifier.objects.exists()
