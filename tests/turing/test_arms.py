"""Studies with several synthetic arms: the plan, the stratified draw, the builder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from core.services import user_create
from gan.models import Dataset
from tests.turing.fixtures import arms_study, create_study, make_synthetic, plan_study
from turing.models import Study, StudyArm, StudyItem
from turing.services import ArmSpec, StudyError, split_items, study_invite

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_generators(media_root: Path) -> tuple[Dataset, Dataset]:
    return make_synthetic("generator A", 12, seed=1), make_synthetic("generator B", 12, seed=2)


def _counts(study: Study, tokens: list[str]) -> Counter[str]:
    arm = dict(StudyItem.objects.filter(study=study).values_list("token", "arm__name"))
    return Counter(arm[t] or "real" for t in tokens)


@pytest.mark.parametrize("same_items_for_all", [True, False])
def test_a_three_arm_study_gives_every_reader_exact_counts_per_arm(
    real_lym: Dataset, two_generators: tuple[Dataset, Dataset], manager: Any, same_items_for_all: bool
) -> None:
    readers = [user_create(username=f"reader{k}", role="expert", validate=False)[0] for k in range(4)]
    arms = {"A": two_generators[0], "B": two_generators[1]}
    study = arms_study(
        real_lym, arms, readers, same_items_for_all=same_items_for_all, created_by=manager, seed=5
    )
    assert list(study.arms.values_list("name", "parts")) == [("A", 1), ("B", 1)]
    orders = [study.assignments.get(reader=r).order for r in readers]
    for order in orders:
        assert _counts(study, order) == {"real": 5, "A": 3, "B": 2}  # 10 x 2/4 real; 5 split 3:2, A first
    assert len({tuple(o) for o in orders}) == 4  # each reader's own order
    # Each arm's items come from that arm's datasets only.
    for item in StudyItem.objects.filter(study=study, arm__isnull=False).select_related("patch", "arm"):
        assert item.patch.dataset_id == item.arm.datasets.get().pk  # type: ignore[union-attr]
    assert study.synthetic_parts == 2 and set(study.synthetic_datasets.all()) == set(two_generators)


def test_split_items_sums_exactly_and_follows_the_parts() -> None:
    assert split_items(100, [1, 1]) == [50, 50]
    assert split_items(7, [1, 1]) == [4, 3]  # as a two-pool study always rounded
    assert split_items(10, [2, 1, 1]) == [5, 3, 2]
    assert split_items(12, [1, 1, 1, 1]) == [3, 3, 3, 3]
    assert split_items(9, [0, 1, 2]) == [0, 3, 6]
    for n in range(2, 60):
        for parts in ([1, 1, 1], [2, 1, 3], [5, 2, 2, 1]):
            counts = split_items(n, parts)
            assert sum(counts) == n and all(c >= 0 for c in counts)


def test_the_plan_names_each_arms_shortfall_and_bad_arms(
    real_lym: Dataset, two_generators: tuple[Dataset, Dataset]
) -> None:
    a, b = two_generators
    plan = plan_study(
        tissue_class="LYM",
        real_datasets=[real_lym],
        arms=[ArmSpec("A", [a], 1), ArmSpec("B", [b], 3)],
        items_per_reader=40,
    )
    # 40 items at 1 : 1 : 3 are 8 real, then 32 split 1:3 between the arms.
    assert [(x.name, x.n, x.available) for x in plan.arms] == [("A", 8, 12), ("B", 24, 12)]
    assert any(
        "24 synthetic LYM items of arm 'B' per reader, but the arm holds 12" in p for p in plan.problems
    )
    assert plan.max_items == 20  # 4 real, 4 of A, 12 of B: B runs out first
    bad = plan_study(
        tissue_class="LYM",
        real_datasets=[real_lym],
        arms=[ArmSpec("A", [a], 1), ArmSpec("A", [a, b], 1), ArmSpec("real", [], 0)],
        items_per_reader=6,
    )
    text = " ".join(bad.problems)
    assert "Two arms are named 'A'" in text and "generator A is in arms 'A' and 'A'" not in text
    assert "An arm cannot be named 'real'" in text and "Arm 'real' needs at least one part" in text
    overlap = plan_study(
        tissue_class="LYM",
        real_datasets=[real_lym],
        arms=[ArmSpec("A", [a], 1), ArmSpec("B", [a], 1)],
        items_per_reader=6,
    )
    assert any("generator A is in arms 'A' and 'B'" in p for p in overlap.problems)


def test_pools_of_different_sizes_are_refused(real_lym: Dataset, media_root: Path) -> None:
    large = make_synthetic("large", 4)
    Dataset.objects.filter(pk=large.pk).update(patch_size=256)
    large.refresh_from_db()
    with pytest.raises(StudyError, match=r"mix patch sizes \(128 px: real LYM; 256 px: large\)"):
        create_study(name="x", real_datasets=[real_lym], synthetic_datasets=[large], items_per_reader=4)
    assert not Study.objects.exists()


def test_a_one_arm_study_draws_as_before_and_names_its_arm(study: Study) -> None:
    (arm,) = StudyArm.objects.filter(study=study)
    assert arm.name == "synthetic" and arm.parts == 1
    assert set(study.items.filter(truth="synthetic").values_list("arm", flat=True)) == {arm.pk}
    assert not study.items.filter(truth="real", arm__isnull=False).exists()


def test_the_builder_makes_a_two_arm_study_and_copies_it(
    manager_client: Client, real_lym: Dataset, two_generators: tuple[Dataset, Dataset], expert: Any
) -> None:
    a, b = two_generators
    data = {
        "name": "A against B",
        "tissue_class": "LYM",
        "real_datasets": [real_lym.pk],
        "arm1_name": "GAN",
        "synthetic_datasets": [a.pk],
        "arm2_name": "diffusion",
        "arm2_datasets": [b.pk],
        "items_per_reader": 12,
        "real_parts": 2,
        "synthetic_parts": 1,
        "arm2_parts": 1,
        "same_items_for_all": "on",
        "ask_confidence": "on",
        "equivalence_margin": 0.1,
        "alpha": 0.05,
        "readers": [expert.pk],
    }
    preview = manager_client.post(reverse("turing:study_new"), data | {"preview": "1"})
    html = preview.content.decode()
    assert "arm GAN</td><td>1</td><td>3</td><td>12</td>" in html
    assert "arm diffusion</td><td>1</td><td>3</td><td>12</td>" in html and not Study.objects.exists()
    data |= {"create": "1", "shortcut_confirmed": "on"}
    created = manager_client.post(reverse("turing:study_new"), data)
    study = Study.objects.get()
    assert created["Location"] == reverse("turing:study_detail", args=[study.pk])
    assert list(study.arms.values_list("name", flat=True)) == ["GAN", "diffusion"]
    assert _counts(study, study.assignments.get().order) == {"real": 6, "GAN": 3, "diffusion": 3}
    copy = manager_client.get(reverse("turing:study_new") + f"?copy={study.pk}").content.decode()
    assert 'value="diffusion"' in copy and 'value="GAN"' in copy


def test_readers_added_later_get_the_same_counts(
    real_lym: Dataset, two_generators: tuple[Dataset, Dataset], expert: Any
) -> None:
    arms = {"A": two_generators[0], "B": two_generators[1]}
    study = arms_study(real_lym, arms, real_parts=1, items_per_reader=8, same_items_for_all=False)
    assignment = study_invite(study=study, reader=expert)
    assert _counts(study, assignment.order) == {"real": 3, "A": 3, "B": 2}  # 8 at 1 : 1 : 1
