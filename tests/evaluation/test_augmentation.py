"""The augmentation experiment on real sample patches and small synthetic ones the tests make."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from core.jobs import job_run
from evaluation import services
from evaluation.models import AugmentationExperiment
from gan.models import Dataset
from gan.services import dataset_import
from neural import augmentation
from neural.data import PackedPatches

pytestmark = pytest.mark.django_db
TINY_CLASSIFIER = {"epochs": 1, "batch_size": 16, "width": 8}


@pytest.fixture
def split(sample_root: Path, tmp_path: Path, lym_tum: Dataset) -> Dataset:
    """A real test set from other slides than the training set (CRC-VAL-HE-7K): the NCT sample's LYM and
    TUM patches. One of each: enough to exercise the pipeline, not to measure anything."""
    root = tmp_path / "nct"
    for cls in ("LYM", "TUM"):
        shutil.copytree(sample_root / "NCT-CRC-HE-100K" / cls, root / cls)
    report = dataset_import(path=root, name="NCT test", classes=["LYM", "TUM"])
    return Dataset.objects.get(pk=report.dataset_id)


def _start(lym_tum: Dataset, test: Dataset, sampling_run: Any, **changes: Any) -> AugmentationExperiment:
    arguments = {
        "train_dataset": lym_tum,
        "test_dataset": test,
        "sampling_run": sampling_run,
        "tissue_class": "LYM",
        "amounts": [0, 4, 8],
        "fraction": 0.25,
        "seeds": [0, 1],
        "classifier": TINY_CLASSIFIER,
    } | changes
    return services.augmentation_start(plan=services.augmentation_plan(**arguments), enqueue=False)


def test_experiment_runs_every_arm_and_reports(
    lym_tum: Dataset, split: Dataset, sampling_run: Any, manager_client: Client
) -> None:
    experiment = _start(lym_tum, split, sampling_run)
    assert job_run(job_id=str(experiment.job_id), worker="w", body=services.augmentation_job) == "finished"
    experiment.refresh_from_db()
    arms = {a["arm"]: a for a in experiment.results["arms"]}
    assert list(arms) == [
        "baseline",
        "scarce",
        "scarce + 4 synthetic",
        "scarce + 8 synthetic",
        "synthetic only for c",
    ]
    assert arms["baseline"]["n_train"] == 24 and arms["scarce"]["n_train"] == 12 + 3
    assert (
        arms["scarce + 8 synthetic"]["n_train"] == 15 + 8
        and arms["synthetic only for c"]["n_train"] == 12 + 8
    )
    for arm in arms.values():
        assert len(arm["accuracy"]["per_seed"]) == 2 and arm["accuracy"]["ci95"] is not None
        assert 0 <= arm["recall_c"]["mean"] <= 1
    assert arms["baseline"]["mcnemar_vs_baseline"] is None
    assert 0 <= arms["scarce"]["mcnemar_vs_baseline"]["p_value"] <= 1
    assert experiment.results["protocol"]["train_counts"] == {"LYM": 12, "TUM": 12}
    page = manager_client.get(
        reverse("evaluation:augmentation_detail", args=[experiment.pk])
    ).content.decode()
    assert "not a scientific result" in page and "scarce + 8 synthetic" in page
    chart = manager_client.get(reverse("evaluation:augmentation_chart", args=[experiment.pk]))
    assert b"<svg" in chart.content
    rows = b"".join(
        manager_client.get(reverse("evaluation:augmentation_csv", args=[experiment.pk])).streaming_content
    )
    assert rows.count(b"\r\n") == 1 + 5 * 3

    # The same stored config and seeds give the same figures on the CPU.
    again = _start(lym_tum, split, sampling_run)
    job_run(job_id=str(again.job_id), worker="w", body=services.augmentation_job)
    again.refresh_from_db()
    assert [a["accuracy"]["per_seed"] for a in again.results["arms"]] == [
        a["accuracy"]["per_seed"] for a in experiment.results["arms"]
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tissue_class": "TUM"}, "made LYM patches, not TUM"),
        ({"amounts": [0, 50]}, "more than the 12 synthetic patches"),
        ({"classes": ["LYM", "TUM", "ADI"]}, "no patches of class.*ADI"),
        ({"fraction": 0}, "must be in \\(0, 1\\]"),
    ],
)
def test_bad_input_is_refused_before_any_training(
    lym_tum: Dataset, split: Dataset, sampling_run: Any, changes: dict, message: str
) -> None:
    with pytest.raises(services.ExperimentError, match=message):
        _start(lym_tum, split, sampling_run, **changes)
    assert not AugmentationExperiment.objects.exists()


def test_overlapping_train_and_test_sets_are_refused_with_the_count(
    lym_tum: Dataset, sample_root: Path, sampling_run: Any
) -> None:
    report = dataset_import(path=sample_root / "CRC-VAL-HE-7K", name="same slides", classes=["LYM", "TUM"])
    overlapping = Dataset.objects.get(pk=report.dataset_id)
    with pytest.raises(services.ExperimentError, match="share 24 patches"):
        _start(lym_tum, overlapping, sampling_run)


def test_command_runs_it_in_the_foreground(lym_tum: Dataset, split: Dataset, sampling_run: Any) -> None:
    out = io.StringIO()
    call_command(
        "augmentation_experiment",
        "--train",
        "LYM+TUM",
        "--test",
        "NCT test",
        "--sampling-run",
        str(sampling_run.pk),
        "--amounts",
        "0,4",
        "--seeds",
        "0",
        "--epochs",
        "1",
        "--width",
        "8",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert "scarce + 4 synthetic" in out.getvalue()
    with pytest.raises(CommandError, match="no dataset named 'nope'"):
        call_command(
            "augmentation_experiment",
            "--train",
            "nope",
            "--test",
            "x",
            "--sampling-run",
            "1",
            stderr=io.StringIO(),
        )


def test_arm_sets_are_what_they_say() -> None:
    images = np.zeros((20, 128, 128, 3), dtype=np.uint8)
    train = PackedPatches.from_arrays(images, np.array([0] * 8 + [1] * 12), ("LYM", "TUM"))
    synthetic = np.full((6, 128, 128, 3), 7, dtype=np.uint8)
    arms = {a.name: a for a in augmentation.arms_for([0, 3, 6])}
    scarce = augmentation.arm_training_set(
        arms["scarce"], train=train, synthetic=synthetic, class_index=0, fraction=0.25, seed=0
    )
    assert scarce.class_counts() == {"LYM": 2, "TUM": 12}
    plus = augmentation.arm_training_set(
        arms["scarce + 3 synthetic"], train=train, synthetic=synthetic, class_index=0, fraction=0.25, seed=0
    )
    assert (
        plus.class_counts() == {"LYM": 5, "TUM": 12}
        and int((np.asarray(plus.images) == 7).all(axis=(1, 2, 3)).sum()) == 3
    )
    only = augmentation.arm_training_set(
        arms["synthetic only for c"], train=train, synthetic=synthetic, class_index=0, fraction=0.25, seed=0
    )
    assert only.class_counts() == {"LYM": 6, "TUM": 12}


def test_macro_f1_and_intervals() -> None:
    truth, predicted = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 2, 0])
    # per class F1: 0 -> 2*1/(2+1+1)=0.5, 1 -> 2*2/(4+1+0)=0.8, 2 -> 2*1/(2+0+1)=0.667
    assert augmentation.macro_f1(truth, predicted, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    mean, ci = augmentation.interval([0.5, 0.7, 0.6])
    assert mean == pytest.approx(0.6) and ci[0] < 0.6 < ci[1]
    assert augmentation.interval([0.5]) == (0.5, None)


def test_a_proportions_interval_over_few_seeds_stays_within_zero_and_one() -> None:
    mean, ci = augmentation.interval([0.0, 0.05, 0.0])
    assert ci is not None and ci[0] == 0.0 and 0 < mean < ci[1] < 1
    _, high = augmentation.interval([1.0, 0.96, 1.0])
    assert high is not None and high[1] == 1.0


def test_a_larger_real_test_set_is_read_at_the_sampling_runs_size(
    lym_tum: Dataset, tiff_root: Path, sampling_run: Any
) -> None:
    """A real test set kept at its own 224 px: read downsampled to the sampling run's 128 px by the
    import's filter, and the experiment runs; a smaller set is refused before any training."""
    report = dataset_import(
        path=tiff_root / "CRC-VAL-HE-7K", name="224 px test", classes=["LYM", "TUM"], size=None
    )
    larger = Dataset.objects.get(pk=report.dataset_id)
    assert larger.patch_size == 224
    experiment = _start(lym_tum, larger, sampling_run, amounts=[0, 4], seeds=[0])
    assert job_run(job_id=str(experiment.job_id), worker="w", body=services.augmentation_job) == "finished"
    experiment.refresh_from_db()
    assert experiment.results["protocol"]["test_counts"] == {"LYM": 2, "TUM": 1}
    Dataset.objects.filter(pk=larger.pk).update(patch_size=96)
    larger.refresh_from_db()
    with pytest.raises(services.ExperimentError, match="smaller than 128 px.*never upsampled"):
        _start(lym_tum, larger, sampling_run)
