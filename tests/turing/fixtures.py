from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from gan import imaging
from gan.models import Dataset, Patch, Source, patch_storage_name
from gan.services import dataset_import
from turing.models import Study
from turing.services import (
    SINGLE_ARM,
    ArmSpec,
    ProtocolOptions,
    StudyPlan,
    StudySpec,
    answer_next,
    answer_submit,
    study_create,
    study_plan,
)


def make_synthetic(name: str, n: int, tissue_class: str = "LYM", seed: int = 0) -> Dataset:
    """Synthetic patches made directly (smooth random fields), stored through the common pipeline."""
    return make_patches(name, n, source=Source.SYNTHETIC, tissue_class=tissue_class, seed=seed)


def make_patches(name: str, n: int, *, source: str, tissue_class: str = "LYM", seed: int = 0) -> Dataset:
    """Patches of smooth random fields with a given source, when the content does not matter."""
    rng = np.random.default_rng(seed)
    fields = (
        np.kron(rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8), np.ones((16, 16, 1), dtype=np.uint8))
        for _ in range(n)
    )
    return patches_from_arrays(name, fields, source=source, tissue_class=tissue_class)


def patches_from_arrays(
    name: str, arrays: Iterable[np.ndarray], *, source: str, tissue_class: str = "LYM"
) -> Dataset:
    """A dataset of the given [N, N, 3] uint8 pictures (one N), stored through the common pipeline."""
    pictures = list(arrays)
    size = pictures[0].shape[0] if pictures else imaging.PATCH_SIZE
    dataset = Dataset.objects.create(name=name, source=source, patch_size=size)
    for index, pixels in enumerate(pictures):
        image = imaging.from_array(pixels)
        digest = imaging.content_hash(image)
        stored = default_storage.save(
            patch_storage_name(dataset.pk, digest), ContentFile(imaging.encode_png(image))
        )
        Patch.objects.create(
            dataset=dataset,
            tissue_class=tissue_class,
            source=source,
            content_hash=digest,
            image=stored,
            seed=index,
        )
    return dataset


def spec_for(
    *,
    real_datasets: Iterable[Dataset],
    synthetic_datasets: Iterable[Dataset] = (),
    synthetic_parts: int = 1,
    arms: list[ArmSpec] | None = None,
    name: str = "a study",
    **settings: Any,
) -> StudySpec:
    """A design the way the tests write one: one synthetic arm of `synthetic_datasets` unless `arms`."""
    if arms is None:
        arms = [ArmSpec(SINGLE_ARM, list(synthetic_datasets), synthetic_parts)]
    return StudySpec(name=name, real_datasets=list(real_datasets), arms=arms, **settings)


def create_study(*, readers: Iterable[Any] = (), created_by: Any = None, **fields: Any) -> Study:
    """`study_create` of `spec_for(**fields)`."""
    return study_create(spec=spec_for(**fields), readers=list(readers), created_by=created_by)


def plan_study(**fields: Any) -> StudyPlan:
    """`study_plan` of `spec_for(**fields)`."""
    return study_plan(spec_for(**fields))


@pytest.fixture
def real_lym(db: Any, sample_root: Path, media_root: Path) -> Dataset:
    report = dataset_import(path=sample_root / "CRC-VAL-HE-7K", name="real LYM", classes=["LYM"])
    return Dataset.objects.get(pk=report.dataset_id)


@pytest.fixture
def synthetic_lym(db: Any, media_root: Path) -> Dataset:
    return make_synthetic("synthetic LYM", 12)


@pytest.fixture
def study(real_lym: Dataset, synthetic_lym: Dataset, expert: Any, manager: Any) -> Study:
    return create_study(
        name="LYM study",
        real_datasets=[real_lym],
        synthetic_datasets=[synthetic_lym],
        items_per_reader=10,
        readers=[expert],
        created_by=manager,
        seed=42,
        ask_profile=False,  # the reading tests start at the first patch; tests/turing/test_profile.py asks
    )


def study_for(real: Dataset, synthetic: Dataset, readers: Iterable[Any] = (), **settings: Any) -> Study:
    """A study of `real` against `synthetic` for `readers`, with the settings a test changes (by default
    10 items per reader and no profile, so that reading starts at the first patch)."""
    defaults: dict[str, Any] = {"name": "a study", "items_per_reader": 10, "ask_profile": False}
    return create_study(
        real_datasets=[real], synthetic_datasets=[synthetic], readers=list(readers), **(defaults | settings)
    )


def arms_study(
    real: Dataset, arms: dict[str, Dataset], readers: Iterable[Any] = (), **settings: Any
) -> Study:
    """A study of `real` against one arm (1 part) per named synthetic set, with real_parts 2 unless
    `settings` say otherwise; readers see the profile page first, as in study_create."""
    specs = [ArmSpec(name, [dataset], 1) for name, dataset in arms.items()]
    defaults: dict[str, Any] = {"name": "arms", "items_per_reader": 10, "real_parts": 2}
    return create_study(real_datasets=[real], arms=specs, readers=list(readers), **(defaults | settings))


def plan_problems(real: Dataset, synthetic: Dataset, **settings: Any) -> list[str]:
    """What the builder's plan says of 10 items per reader from these pools with these protocol options
    (and `real_parts` / `synthetic_parts` where given)."""
    parts = {k: settings.pop(k) for k in ("real_parts", "synthetic_parts") if k in settings}
    return plan_study(
        tissue_class="LYM",
        real_datasets=[real],
        synthetic_datasets=[synthetic],
        items_per_reader=10,
        options=ProtocolOptions(**settings),
        **parts,
    ).problems


def builder_form(real: Dataset, synthetic: Dataset, expert: Any, **changes: Any) -> dict[str, Any]:
    """The study builder's form, filled: `real` against `synthetic` for `expert`, 8 items each."""
    return {
        "name": "Built",
        "tissue_class": "LYM",
        "real_datasets": [real.pk],
        "synthetic_datasets": [synthetic.pk],
        "items_per_reader": 8,
        "real_parts": 1,
        "synthetic_parts": 1,
        "same_items_for_all": "on",
        "ask_confidence": "on",
        "instructions": "Label each patch.",
        "readers": [expert.pk],
        "equivalence_margin": 0.1,
        "alpha": 0.05,
        "planned_readers": 4,
        # The tests' synthetic patches are flat fields, told from real ones at a glance: a confirmed
        # shortcut (tests/turing/test_shortcut_check.py tests the refusal).
        "shortcut_confirmed": "on",
    } | changes


def answer_next_item(assignment: Any, label: str = "real", **fields: Any) -> Any:
    """The reader of `assignment` answers the next item they are shown."""
    token = answer_next(assignment=assignment).token
    return answer_submit(
        study_id=assignment.study_id, reader=assignment.reader, token=token, label=label, **fields
    )
