"""The class check of synthetic sets: the tissue classifier's agreement with the declared class, kept on
the set and shown on its page and in the study builder."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from core.jobs import job_run
from core.models import Job
from evaluation import services
from gan.models import Dataset, Source
from gan.selectors import dataset_class_check_lines
from gan.signals import dataset_imported
from tests.turing.fixtures import builder_form, patches_from_arrays, plan_study

pytestmark = pytest.mark.django_db


def _tissue(kind: str, n: int, seed: int, size: int = 128) -> list[np.ndarray]:
    """Stand-ins a small classifier tells apart at once: dark purple "LYM", pale pink "STR"."""
    rng = np.random.default_rng(seed)
    base = {"LYM": (70, 40, 110), "STR": (230, 160, 190)}[kind]
    return [
        np.clip(np.array(base) + rng.normal(0, 12, size=(size, size, 3)), 0, 255).astype(np.uint8)
        for _ in range(n)
    ]


def _real_pool(size: int = 128) -> Dataset:
    real = patches_from_arrays(
        f"real LYM {size}", _tissue("LYM", 16, 1, size), source=Source.REAL, tissue_class="LYM"
    )
    stroma = patches_from_arrays(
        f"real STR {size}", _tissue("STR", 16, 2, size), source=Source.REAL, tissue_class="STR"
    )
    for patch in stroma.patches.all():  # one real dataset of both classes, as a classifier is trained on
        patch.dataset = real
        patch.save(update_fields=["dataset"])
    return real


@pytest.fixture
def real_pool(media_root: Any) -> Dataset:
    return _real_pool()


def _train(dataset: Dataset) -> Any:
    trained = services.classifier_train_start(dataset=dataset, epochs=6)
    assert (
        job_run(job_id=str(trained.job_id), worker="w", body=services.classifier_train_then_check)
        == "finished"
    )
    trained.refresh_from_db()
    return trained


def _check(dataset: Dataset) -> dict[str, Any]:
    job = services.class_check_start(dataset=dataset)
    assert job is not None and job.queue == Job.Queue.DEFAULT
    assert job_run(job_id=str(job.pk), worker="w", body=services.class_check_job) == "finished"
    dataset.refresh_from_db()
    return dataset.class_check


def test_a_set_mostly_of_another_tissue_is_named_and_flagged(
    real_pool: Dataset, manager_client: Client, expert: Any
) -> None:
    classifier = _train(real_pool)
    assert classifier.metrics["per_class_recall"] == {"LYM": 1.0, "STR": 1.0}
    mixed = patches_from_arrays(
        "LYM, mostly not",
        _tissue("LYM", 3, 3) + _tissue("STR", 7, 4),
        source=Source.SYNTHETIC,
        tissue_class="LYM",
    )
    check = _check(mixed)["classes"]["LYM"]
    assert (check["checked"], check["agreeing"], check["counts"]) == (10, 3, {"STR": 7, "LYM": 3})
    assert check["flagged"] and check["classifier"] == classifier.pk
    (line,) = dataset_class_check_lines(dataset=mixed)
    assert line["flagged"] and line["text"].startswith("3 of 10 classified LYM (others: 7 STR)")
    assert "calls 100% of held-out real LYM patches LYM" in line["text"]
    page = manager_client.get(reverse("gan:dataset_detail", args=[mixed.pk])).content.decode()
    assert "3 of 10 classified LYM" in page and "Look at this set before a study" in page
    # The builder says it too, as a warning beside the counts.
    plan = plan_study(
        tissue_class="LYM", real_datasets=[real_pool], synthetic_datasets=[mixed], items_per_reader=6
    )
    assert plan.class_checks == [("LYM, mostly not", line["text"], True)]
    assert any(w.startswith("LYM, mostly not: 3 of 10 classified LYM") for w in plan.warnings)
    # The builder's preview says it once, flagged, with what to do.
    form = builder_form(real_pool, mixed, expert, items_per_reader=6)
    preview = manager_client.post(reverse("turing:study_new"), form).content.decode()
    assert preview.count("3 of 10 classified LYM") == 1
    assert (
        "Look at this set's patches (its dataset page) before readers do:</strong> LYM, mostly not" in preview
    )

    faithful = patches_from_arrays(
        "LYM, faithful", _tissue("LYM", 8, 5), source=Source.SYNTHETIC, tissue_class="LYM"
    )
    check = _check(faithful)["classes"]["LYM"]
    assert check["agreeing"] == 8 and not check["flagged"]
    plan = plan_study(
        tissue_class="LYM", real_datasets=[real_pool], synthetic_datasets=[faithful], items_per_reader=6
    )
    assert not any("classified" in w for w in plan.warnings)


def test_a_set_no_classifier_can_check_says_so_and_is_checked_once_one_is_trained(real_pool: Dataset) -> None:
    early = patches_from_arrays(
        "early LYM", _tissue("STR", 4, 6), source=Source.SYNTHETIC, tissue_class="LYM"
    )
    assert dataset_class_check_lines(dataset=early)[0]["text"] == "Not checked against its class yet."
    assert _check(early)["classes"]["LYM"] == {"classifier": None}
    assert "no tissue classifier knows LYM yet" in dataset_class_check_lines(dataset=early)[0]["text"]
    _train(real_pool)  # its job queues the check of every set no classifier could check
    job = Job.objects.filter(kind="class_check").order_by("-created_at").first()
    assert job is not None and job.params == {"dataset": early.pk}
    assert job_run(job_id=str(job.pk), worker="w", body=services.class_check_job) == "finished"
    early.refresh_from_db()
    assert (
        early.class_check["classes"]["LYM"]["agreeing"] == 0
        and early.class_check["classes"]["LYM"]["flagged"]
    )


def test_an_imported_synthetic_set_is_checked_a_real_one_is_not(real_pool: Dataset, media_root: Any) -> None:
    synthetic = patches_from_arrays(
        "imported", _tissue("LYM", 2, 7), source=Source.SYNTHETIC, tissue_class="LYM"
    )
    dataset_imported.send(sender=Dataset, dataset=synthetic)
    dataset_imported.send(sender=Dataset, dataset=real_pool)
    assert list(Job.objects.filter(kind="class_check").values_list("params", flat=True)) == [
        {"dataset": synthetic.pk}
    ]
    synthetic.refresh_from_db()
    assert dataset_class_check_lines(dataset=synthetic)[0]["text"] == "The class check is running."


def test_sets_larger_than_the_classifier_reads_are_trained_on_and_checked(media_root: Any) -> None:
    """A group whose real tiles and generator are at 200 px (an outside diffusion model's): the classifier
    learns from the real set downsampled to 128 px by the import's filter, and checks the 200 px set."""
    classifier = _train(_real_pool(200))
    assert classifier.metrics["per_class_recall"] == {"LYM": 1.0, "STR": 1.0}
    mostly_stroma = patches_from_arrays(
        "200 px LYM", _tissue("LYM", 2, 8, 200) + _tissue("STR", 5, 9, 200), source=Source.SYNTHETIC
    )
    check = _check(mostly_stroma)["classes"]["LYM"]
    assert (check["checked"], check["agreeing"], check["flagged"]) == (7, 2, True)
    small = patches_from_arrays("96 px LYM", _tissue("LYM", 2, 10, 96), source=Source.SYNTHETIC)
    assert "this set's are 96 px" in _check(small)["classes"]["LYM"]["unreadable"]


def test_a_set_read_at_another_scale_than_the_classifier_learnt_is_said_to_be_a_rougher_guide(
    real_pool: Dataset,
) -> None:
    """The classifier learnt 128 px patches at 0.5 µm/px; a 200 px set at 0.5 µm/px is read at 0.78 µm/px
    (downsampled to 128 px): more than 25% apart, so its line says so. A set at the classifier's own
    scale, or of unknown resolution, carries no such words."""
    Dataset.objects.filter(pk=real_pool.pk).update(microns_per_pixel=0.5)
    _train(real_pool)
    other_scale = patches_from_arrays("200 px at 0.5", _tissue("LYM", 4, 11, 200), source=Source.SYNTHETIC)
    Dataset.objects.filter(pk=other_scale.pk).update(microns_per_pixel=0.5)
    same_scale = patches_from_arrays("128 px at 0.5", _tissue("LYM", 4, 12), source=Source.SYNTHETIC)
    Dataset.objects.filter(pk=same_scale.pk).update(microns_per_pixel=0.5)
    unknown = patches_from_arrays("128 px, unknown", _tissue("LYM", 4, 13), source=Source.SYNTHETIC)
    for dataset in (other_scale, same_scale, unknown):
        dataset.refresh_from_db()
        _check(dataset)
    (line,) = dataset_class_check_lines(dataset=other_scale)
    assert "It read these patches at 0.78 µm per pixel and learnt at 0.5" in line["text"]
    assert "rougher guide" in line["text"]
    for dataset in (same_scale, unknown):
        assert "rougher guide" not in dataset_class_check_lines(dataset=dataset)[0]["text"], dataset.name
