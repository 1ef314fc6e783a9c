"""Writes of the turing app: building studies, inviting readers, serving items, storing answers."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from core.roles import EXPERTS_GROUP, is_expert, signed_in
from core.services import user_create
from core.validators import has_control_characters
from evaluation import planning, shortcuts
from gan import imaging
from gan.models import Dataset, Patch, SamplingRun, Source, TrainingRun
from turing.models import (
    Answer,
    Assignment,
    ImageFetch,
    Invitation,
    PracticeAnswer,
    PracticeItem,
    ReaderRole,
    Study,
    StudyArm,
    StudyEvent,
    StudyItem,
    StudyItemImage,
    default_reasons,
)
from turing.selectors import assignment_answered_count

SINGLE_ARM = "synthetic"  # the name of a study's arm when it has one


class StudyError(ValueError):
    """A study that cannot be built or changed as asked; the message says why."""


class AnswerError(Exception):
    """An answer that cannot be taken; `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# --- Building -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSize:
    """The builder's sample-size estimate for the equivalence test of the mean AUC (80% power)."""

    readers_needed: int | None  # reading `items` items each
    power_with_planned: float | None  # with the planned number of readers
    planned_readers: int | None
    items: int
    margin: float
    alpha: float
    source: str


def sample_size(
    *,
    items: int,
    margin: float,
    alpha: float,
    planned_readers: int | None,
    pilot: planning.Pilot | None,
    synthetic_share: float = 0.5,
) -> SampleSize:
    """Hillis & Obuchowski's method: readers needed for the TOST of the mean AUC against 0.5 +- margin,
    assuming the synthetic patches are truly indistinguishable (AUC 0.5), from a pilot's variances
    scaled to `items` cases at the design's own share of synthetic items, or from the literature's
    planning values when no pilot is chosen."""
    if not 0 < synthetic_share < 1:
        synthetic_share = 0.5  # a design with no real or no synthetic items has no AUC to plan for
    if pilot is None:
        pilot = planning.default_pilot(cases=max(items, 4), positive_share=synthetic_share)
    else:
        pilot = pilot.with_share(synthetic_share)
    power = (
        planning.equivalence_power(pilot, planned_readers, items, margin, alpha) if planned_readers else None
    )
    return SampleSize(
        planning.readers_needed(pilot, items, margin, alpha=alpha),
        power,
        planned_readers,
        items,
        margin,
        alpha,
        pilot.source,
    )


def study_sample_size(*, study: Study, pilot: planning.Pilot | None = None) -> SampleSize:
    """The planned design's power: its planned readers (those enrolled, until the freeze fixes the
    plan) reading its items at its own ratio, under its own margin and alpha."""
    planned = study.planned_readers or study.assignments.count()
    return sample_size(
        items=study.items_per_reader,
        margin=study.equivalence_margin,
        alpha=study.alpha,
        planned_readers=planned or None,
        pilot=pilot,
        synthetic_share=study.synthetic_parts / (study.real_parts + study.synthetic_parts),
    )


@dataclass(frozen=True)
class ArmSpec:
    """A synthetic arm as a manager asks for it: a name, its synthetic datasets, its parts of the ratio."""

    name: str
    datasets: Sequence[Dataset]
    parts: int = 1


@dataclass
class ArmPlan:
    name: str
    parts: int
    n: int  # items per reader from this arm
    available: int  # patches of the study's class in the arm's datasets


@dataclass
class StudyPlan:
    """What a study would hold, computed before anything is written (the builder's preview)."""

    tissue_class: str
    items_per_reader: int
    n_real: int
    n_synthetic: int
    real_available: int
    synthetic_available: int
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    real_parts: int = 1
    synthetic_parts: int = 1
    arms: list[ArmPlan] = field(default_factory=list)
    patch_size: int | None = None
    practice_real: int = 0  # practice patches per study (the same for every reader)
    practice_synthetic: int = 0
    repeats: int = 0  # test items each reader reads a second time

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def max_items(self) -> int:
        """The most items per reader these pools fill at this ratio (real : each arm)."""
        parts = [self.real_parts] + [a.parts for a in self.arms]
        available = [self.real_available] + [a.available for a in self.arms]
        n = sum(available)
        while n > 0:
            if all(k <= have for k, have in zip(split_items(n, parts), available, strict=True)):
                return n
            n -= 1
        return 0


def split_items(n: int, parts: Sequence[int]) -> list[int]:
    """`n` items in proportion to `parts` (real first, then each arm), summing to exactly `n`.

    The real share is rounded as a two-pool study always was; the synthetic rest goes to the arms by
    largest remainder (ties to the earlier arm), so every reader gets the same counts per arm."""
    total = sum(parts)
    if total <= 0:
        return [0] * len(parts)
    n_real = round(n * parts[0] / total)
    rest, arm_parts = n - n_real, parts[1:]
    arm_total = sum(arm_parts)
    if arm_total == 0:
        return [n_real] + [0] * len(arm_parts)
    exact = [rest * p / arm_total for p in arm_parts]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: rest - sum(counts)]:
        counts[i] += 1
    return [n_real, *counts]


def _pool(
    datasets: Iterable[Dataset], tissue_class: str, source: str, without: Iterable[str] = ()
) -> QuerySet[Patch]:
    """The patches of a pool; `without`: content hashes it gives up (the images of the study's practice
    patches, whatever dataset holds them: practice shows the truth, so no test item may show the same
    image)."""
    ids = [d.pk for d in datasets]
    pool = Patch.objects.filter(dataset_id__in=ids, tissue_class=tissue_class, source=source)
    without = list(without)
    return pool.exclude(content_hash__in=without) if without else pool


PRACTICE_MAX = 50
REPEAT_SHARE_MAX = 0.5
WASHOUT_DAYS_MAX = 365


@dataclass(frozen=True)
class ProtocolOptions:
    """The reading protocol's options beyond the item mix: practice and repeat reads."""

    practice_items: int = 0
    practice_datasets: Sequence[Dataset] = ()
    repeat_share: float = 0.0
    repeat_gap: int = 10
    repeat_washout_days: int = 0


def repeat_count(items: int, share: float) -> int:
    return round(items * share)


def _options_problems(options: ProtocolOptions, items_per_reader: int) -> list[str]:
    problems = []
    if not 0 <= options.practice_items <= PRACTICE_MAX:
        problems.append(f"Practice patches must be from 0 to {PRACTICE_MAX}, got {options.practice_items}.")
    elif options.practice_items and not options.practice_datasets:
        problems.append("A practice phase needs the pools its patches come from.")
    elif options.practice_items == 1:
        problems.append("A practice phase needs at least 2 patches (one real, one synthetic).")
    if not 0 <= options.repeat_share <= REPEAT_SHARE_MAX:
        problems.append(
            f"The share of repeat reads must be from 0 to {REPEAT_SHARE_MAX:g}, got {options.repeat_share:g}."
        )
        return problems
    if not 0 <= options.repeat_washout_days <= WASHOUT_DAYS_MAX:
        problems.append(f"The washout must be from 0 to {WASHOUT_DAYS_MAX} days.")
    repeats = repeat_count(items_per_reader, options.repeat_share)
    if options.repeat_share and repeats == 0:
        problems.append(
            f"A share of {options.repeat_share:g} of {items_per_reader} items repeats none: raise the share."
        )
    if repeats and not options.repeat_washout_days:
        if options.repeat_gap < 1:
            problems.append("Repeat reads need at least 1 other item between the two reads.")
        elif repeats > items_per_reader - options.repeat_gap:
            problems.append(
                f"{repeats} repeat reads with at least {options.repeat_gap} other items before each "
                f"need more than {items_per_reader} items per reader: lower the share or the gap, or use "
                "a washout."
            )
    return problems


def _practice_overlap(
    practice: Sequence[Dataset], pool: Sequence[Dataset], n: int, tissue_class: str, source: str
) -> int:
    """How many of a test pool's patches show an image the practice pools also hold (by content hash,
    in any dataset), at most the `n` that practice draws: the test draw may lose that many."""
    if not n or not practice:
        return 0
    images = _pool(practice, tissue_class, source).values("content_hash")
    return min(n, _pool(pool, tissue_class, source).filter(content_hash__in=images).count())


def repeat_order(order: Sequence[str], *, repeats: int, gap: int, washout: bool, seed: int) -> list[str]:
    """A reader's order with `repeats` of its items read a second time.

    In one sitting, each repeat comes after at least `gap` other items (an item at place i is repeated
    after the item at a place drawn from i + gap to the end, so only items with `gap` after them can be);
    with a washout, the repeats form a second session after the whole first, in an order of their own.
    Pure and seeded, so `assignment_order_audit` can rebuild it."""
    order = list(order)
    if repeats <= 0:
        return order
    rng = np.random.default_rng([seed, 4])
    n = len(order)
    if washout:
        chosen = sorted(int(i) for i in rng.choice(n, size=repeats, replace=False))
        return order + [order[chosen[i]] for i in rng.permutation(repeats)]
    chosen = sorted(int(i) for i in rng.choice(n - gap, size=repeats, replace=False))
    after: dict[int, list[str]] = {}
    for i in chosen:
        after.setdefault(int(rng.integers(i + gap, n)), []).append(order[i])
    result = []
    for j, token in enumerate(order):
        result.append(token)
        result += after.get(j, [])
    return result


def _arm_problems(arms: Sequence[ArmSpec]) -> list[str]:
    problems = []
    names = [a.name.strip() for a in arms]
    if not arms:
        problems.append("A study needs at least one synthetic arm.")
    if any(not name for name in names):
        problems.append("Every synthetic arm needs a name.")
    for name in sorted({n for n in names if names.count(n) > 1 and n}):
        problems.append(f"Two arms are named {name!r}: each arm needs its own name.")
    if any(name.lower() == Source.REAL for name in names):
        problems.append("An arm cannot be named 'real'.")
    seen: dict[int, str] = {}
    for arm in arms:
        if arm.parts < 1:
            problems.append(f"Arm {arm.name!r} needs at least one part of the ratio.")
        for dataset in arm.datasets:
            if dataset.pk in seen and seen[dataset.pk] != arm.name:
                problems.append(
                    f"{dataset.name} is in arms {seen[dataset.pk]!r} and {arm.name!r}: an arm's patches "
                    "must be its own."
                )
            seen[dataset.pk] = arm.name
    return problems


def _pool_resolution(real_datasets: Sequence[Dataset]) -> float | None:
    """The real pool's resolution when its datasets agree on one (else no scale bar: it would be wrong
    for some patches)."""
    values = {d.microns_per_pixel for d in real_datasets}
    return values.pop() if len(values) == 1 else None


def _size_problem(datasets: Iterable[Dataset]) -> tuple[int | None, list[str]]:
    sizes: dict[int, list[str]] = {}
    for dataset in datasets:
        sizes.setdefault(dataset.patch_size, []).append(dataset.name)
    if len(sizes) <= 1:
        return (next(iter(sizes)) if sizes else None), []
    described = "; ".join(f"{size} px: {', '.join(sorted(names))}" for size, names in sorted(sizes.items()))
    return None, [f"The pools mix patch sizes ({described}): every pool of a study must share one size."]


def study_plan(
    *,
    tissue_class: str,
    real_datasets: Sequence[Dataset],
    synthetic_datasets: Sequence[Dataset] = (),
    items_per_reader: int,
    real_parts: int = 1,
    synthetic_parts: int = 1,
    equivalence_margin: float = 0.10,
    alpha: float = 0.05,
    arms: Sequence[ArmSpec] | None = None,
    harmonise_jpeg_quality: int = 0,
    options: ProtocolOptions = ProtocolOptions(),
) -> StudyPlan:
    """The preview of a study: counts per reader from the real pool and each arm, and every problem.

    `arms` defaults to one arm, "synthetic", of `synthetic_datasets` with `synthetic_parts`. Practice
    patches are drawn first and never enter the test set: a test pool they share gives them up."""
    tissue_class = tissue_class.strip().upper()
    if arms is None:
        arms = [ArmSpec(SINGLE_ARM, list(synthetic_datasets), synthetic_parts)]
    arms = [ArmSpec(a.name.strip(), list(a.datasets), a.parts) for a in arms]
    problems: list[str] = protocol_problems(equivalence_margin=equivalence_margin, alpha=alpha)
    if items_per_reader < 2:
        problems.append("A study needs at least 2 items per reader.")
    if real_parts < 0 or real_parts + sum(max(a.parts, 0) for a in arms) == 0:
        problems.append("The real:synthetic ratio needs at least one positive part.")
        real_parts = 1
    problems += _arm_problems(arms)
    low, high = JPEG_QUALITY_RANGE
    if harmonise_jpeg_quality and not low <= harmonise_jpeg_quality <= high:
        problems.append(f"The harmonising JPEG quality must be from {low} to {high} (or 0 for none).")
    parts = [real_parts] + [max(a.parts, 0) for a in arms]
    counts = split_items(items_per_reader, parts)
    problems += _options_problems(options, items_per_reader)
    practice_real, practice_synthetic = split_items(options.practice_items, [1, 1])
    practice = list(options.practice_datasets)
    for source, n in ((Source.REAL, practice_real), (Source.SYNTHETIC, practice_synthetic)):
        have = _pool(practice, tissue_class, source).count() if n else 0
        if practice and n > have:
            problems.append(
                f"The practice phase asks for {n} {source} {tissue_class} patches, but its pools hold {have}."
            )
    real_overlap = _practice_overlap(practice, real_datasets, practice_real, tissue_class, Source.REAL)
    real_available = _pool(real_datasets, tissue_class, Source.REAL).count() - real_overlap
    overlap = real_overlap
    if counts[0] > real_available:
        problems.append(
            f"The study asks for {counts[0]} real {tissue_class} items per reader, "
            f"but the real pool holds {real_available} {tissue_class} patches."
        )
    arm_plans = []
    for arm, n in zip(arms, counts[1:], strict=True):
        arm_overlap = _practice_overlap(
            practice, arm.datasets, practice_synthetic, tissue_class, Source.SYNTHETIC
        )
        overlap += arm_overlap
        available = _pool(arm.datasets, tissue_class, Source.SYNTHETIC).count() - arm_overlap
        arm_plans.append(ArmPlan(arm.name, arm.parts, n, available))
        if n > available:
            what, pool = (
                ("", "the synthetic pool") if len(arms) == 1 else (f" of arm {arm.name!r}", "the arm")
            )
            problems.append(
                f"The study asks for {n} synthetic {tissue_class} items{what} per reader, "
                f"but {pool} holds {available} {tissue_class} patches."
            )
    all_synthetic = [d for a in arms for d in a.datasets]
    patch_size, size_problems = _size_problem([*real_datasets, *all_synthetic, *practice])
    problems += size_problems
    warnings = _colour_leak_warnings(real_datasets, all_synthetic)
    if overlap:
        warnings.append(
            f"The practice pools hold the same images as {overlap} patch{'es' if overlap != 1 else ''} of "
            "the test pools (compared by content, in any dataset): those that practice draws are left out "
            "of the test items, since practice shows each patch's truth; the counts above allow for it."
        )
    return StudyPlan(
        tissue_class,
        items_per_reader,
        counts[0],
        sum(counts[1:]),
        real_available,
        sum(a.available for a in arm_plans),
        problems,
        warnings,
        real_parts,
        sum(a.parts for a in arms),
        arm_plans,
        patch_size,
        practice_real if options.practice_items else 0,
        practice_synthetic if options.practice_items else 0,
        repeat_count(items_per_reader, options.repeat_share),
    )


MARGIN_RANGE = (0.01, 0.30)
ALPHA_RANGE = (0.001, 0.20)


def protocol_problems(*, equivalence_margin: float, alpha: float) -> list[str]:
    problems = []
    if not MARGIN_RANGE[0] <= equivalence_margin <= MARGIN_RANGE[1]:
        problems.append(
            f"The equivalence margin must be from {MARGIN_RANGE[0]} to {MARGIN_RANGE[1]} in AUC, "
            f"got {equivalence_margin:g}."
        )
    if not ALPHA_RANGE[0] <= alpha <= ALPHA_RANGE[1]:
        problems.append(f"Alpha must be from {ALPHA_RANGE[0]} to {ALPHA_RANGE[1]}, got {alpha:g}.")
    return problems


def _colour_leak_warnings(
    real_datasets: Sequence[Dataset], synthetic_datasets: Sequence[Dataset]
) -> list[str]:
    """Real patches from another dataset than the GAN learnt from can differ in stain colour."""
    run_ids = {d.provenance.get("training_run") for d in synthetic_datasets} - {None}
    trained_on = set(TrainingRun.objects.filter(pk__in=run_ids).values_list("dataset_id", flat=True))
    real_ids = {d.pk for d in real_datasets}
    warnings = []
    if trained_on and real_ids - trained_on:
        names = ", ".join(sorted(d.name for d in real_datasets if d.pk not in trained_on))
        warnings.append(
            f"The real pool includes {names}, which the GAN was not trained on: stain colours may differ "
            "between datasets and tell real from synthetic."
        )
    if any(d.is_demo for d in synthetic_datasets):
        warnings.append("The synthetic pool comes from a demo-configuration model, not the paper's.")
    runs = TrainingRun.objects.in_bulk(run_ids)
    for dataset in synthetic_datasets:
        run = runs.get(dataset.provenance.get("training_run"))
        step = dataset.provenance.get("checkpoint_step", 0)
        for warning in run.health.get("warnings", []) if run is not None else []:
            if warning["step"] <= step:
                warnings.append(
                    f"{dataset.name} comes from a checkpoint whose training warned: {warning['message']}"
                )
    return warnings


def _draw(ids: Sequence[int], n: int, rng: np.random.Generator) -> list[int]:
    ordered = sorted(ids)
    return [ordered[i] for i in rng.choice(len(ordered), size=n, replace=False)] if n else []


def _create_items(
    study: Study, real_ids: list[int], arm_ids: list[tuple[StudyArm, list[int]]]
) -> list[StudyItem]:
    items = [StudyItem(study=study, patch_id=pid, truth=Source.REAL) for pid in real_ids]
    for arm, ids in arm_ids:
        items += [StudyItem(study=study, patch_id=pid, truth=Source.SYNTHETIC, arm=arm) for pid in ids]
    # Written in an order shuffled by the study's seed: ids, table and TOAST placement say nothing of an
    # item's truth or arm (created in blocks, later pages could be timed apart from earlier ones).
    items = [items[i] for i in np.random.default_rng([study.seed, 3]).permutation(len(items))]
    created = StudyItem.objects.bulk_create(items)
    item_images_make(items=created, jpeg_quality=study.harmonise_jpeg_quality)
    return created


def _blinded_pngs(patch_ids: Iterable[int], jpeg_quality: int) -> dict[int, bytes]:
    """Patch id -> the blinded bytes an expert receives for it, through the study's final pipeline
    (`jpeg_quality`: its harmonisation, 0 for none); made once per item, never per request."""
    files = dict(Patch.objects.filter(pk__in=set(patch_ids)).values_list("pk", "image"))
    pngs = {}
    for patch_id, name in files.items():
        with default_storage.open(name, "rb") as handle:
            pngs[patch_id] = imaging.blinded_png(handle.read(), jpeg_quality)
    return pngs


def item_images_make(*, items: Sequence[StudyItem], jpeg_quality: int = 0) -> None:
    """Make, once, the blinded bytes each item is served as (see `StudyItemImage`)."""
    pngs = _blinded_pngs((i.patch_id for i in items), jpeg_quality)
    images = [StudyItemImage(item_id=item.pk, png=pngs[item.patch_id]) for item in items]
    StudyItemImage.objects.bulk_create(images, batch_size=200)


# --- The shortcut check -----------------------------------------------------------------------------

SHORTCUT_SAMPLE = 150  # patches of each kind the builder's check reads from the pools
JPEG_QUALITY_RANGE = (50, 100)


def _shortcut_dict(result: shortcuts.ShortcutResult) -> dict[str, Any]:
    return dataclasses.asdict(result) | {"strongest": result.strongest, "rule": shortcuts.RULE}


def _stored_pixels(patch_ids: Sequence[int], jpeg_quality: int) -> np.ndarray:
    files = dict(Patch.objects.filter(pk__in=patch_ids).values_list("pk", "image"))
    arrays = []
    for pk in patch_ids:
        with default_storage.open(files[pk], "rb") as handle:
            arrays.append(imaging.harmonised(imaging.decode_png_array(handle.read()), jpeg_quality))
    return np.stack(arrays) if arrays else np.zeros((0, 1, 1, 3), np.uint8)


def shortcut_check_pools(
    *,
    tissue_class: str,
    real_datasets: Sequence[Dataset],
    synthetic_datasets: Sequence[Dataset],
    jpeg_quality: int = 0,
) -> dict[str, Any]:
    """The shortcut check on up to `SHORTCUT_SAMPLE` patches of each kind from the pools, through the
    final pipeline they would be shown through; cached, since the builder's preview asks on each change."""
    tissue_class = tissue_class.strip().upper()
    ids = [
        sorted(_pool(pools, tissue_class, source).values_list("id", flat=True))
        for pools, source in ((real_datasets, Source.REAL), (synthetic_datasets, Source.SYNTHETIC))
    ]
    key = "shortcuts:" + hashlib.sha256(json.dumps([ids, jpeg_quality]).encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return dict(cached)
    rng = np.random.default_rng(0)
    chosen = [sorted(rng.choice(i, size=min(SHORTCUT_SAMPLE, len(i)), replace=False).tolist()) for i in ids]
    sizes = {d.patch_size for d in [*real_datasets, *synthetic_datasets]}
    if len(sizes) > 1 or not all(chosen):
        result = shortcuts.ShortcutResult(
            len(chosen[0]), len(chosen[1]), None, reason="the pools cannot be compared"
        )
    else:
        result = shortcuts.shortcut_check(
            _stored_pixels(chosen[0], jpeg_quality), _stored_pixels(chosen[1], jpeg_quality)
        )
    data = _shortcut_dict(result) | {"scope": "pools"}
    cache.set(key, data, timeout=24 * 3600)
    return data


def study_shortcut_check(*, study: Study) -> dict[str, Any]:
    """The study's shortcut check, made once (the first time its page or report is shown) and stored: on
    its items exactly as readers receive them (their blinded bytes), or, for a study that draws items
    per reader, on its pools."""
    if study.shortcut_check:
        return dict(study.shortcut_check)
    if study.same_items_for_all:
        result = _items_shortcut_check(study)
    else:
        result = shortcut_check_pools(
            tissue_class=study.tissue_class,
            real_datasets=list(study.real_datasets.all()),
            synthetic_datasets=list(study.synthetic_datasets.all()),
            jpeg_quality=study.harmonise_jpeg_quality,
        )
    Study.objects.filter(pk=study.pk).update(shortcut_check=result)
    study.shortcut_check = result
    return result


SHORTCUT_ITEMS = 500  # items of each kind the study's own check reads (a seeded sample of larger studies)


def _items_shortcut_check(study: Study) -> dict[str, Any]:
    """Decoding every image of a 5,000-item study would hold up the page that asks first: a large study
    is checked on a seeded sample of its items, as the result's counts say."""
    rng = np.random.default_rng([study.seed, 4])
    chosen: list[int] = []
    for kind in (Source.REAL, Source.SYNTHETIC):
        ids = sorted(study.items.filter(truth=kind).values_list("id", flat=True))
        chosen += (
            sorted(rng.choice(ids, size=min(SHORTCUT_ITEMS, len(ids)), replace=False).tolist()) if ids else []
        )
    rows = StudyItemImage.objects.filter(item_id__in=chosen).values_list("item__truth", "png")
    pixels: dict[str, list[np.ndarray]] = {Source.REAL: [], Source.SYNTHETIC: []}
    for truth, png in rows:
        pixels[truth].append(imaging.decode_png_array(bytes(png)))
    real, synthetic = (np.stack(pixels[k]) if pixels[k] else np.zeros((0, 1, 1, 3), np.uint8) for k in pixels)
    return _shortcut_dict(shortcuts.shortcut_check(real, synthetic)) | {"scope": "items"}


def _draw_item_set(study: Study, seed: int, plan: StudyPlan) -> list[StudyItem]:
    """The real draw first, then each arm in order, from one stream: a one-arm study draws what a
    study drew before arms existed."""
    rng = np.random.default_rng([seed, 1])
    practice = list(study.practice.values_list("patch__content_hash", flat=True))
    real_ids = list(
        _pool(study.real_datasets.all(), study.tissue_class, Source.REAL, practice).values_list(
            "id", flat=True
        )
    )
    real = _draw(real_ids, plan.n_real, rng)
    by_name = {a.name: a for a in plan.arms}
    arm_ids = []
    for arm in study.arms.all():
        ids = list(
            _pool(arm.datasets.all(), study.tissue_class, Source.SYNTHETIC, practice).values_list(
                "id", flat=True
            )
        )
        arm_ids.append((arm, _draw(ids, by_name[arm.name].n, rng)))
    return _create_items(study, real, arm_ids)


def _draw_practice(study: Study, plan: StudyPlan) -> list[PracticeItem]:
    """The study's practice patches, half real and half synthetic, from its practice pools (drawn before
    the test set, which then never holds them), stored as blinded bytes like the test items."""
    rng = np.random.default_rng([study.seed, 5])
    pools = list(study.practice_datasets.all())
    drawn = []
    for source, n in ((Source.REAL, plan.practice_real), (Source.SYNTHETIC, plan.practice_synthetic)):
        ids = list(_pool(pools, study.tissue_class, source).values_list("id", flat=True))
        drawn += [(pid, source) for pid in _draw(ids, n, rng)]
    pngs = _blinded_pngs((pid for pid, _ in drawn), study.harmonise_jpeg_quality)
    shuffled = [drawn[i] for i in rng.permutation(len(drawn))]
    items = [PracticeItem(study=study, patch_id=pid, truth=truth, png=pngs[pid]) for pid, truth in shuffled]
    return PracticeItem.objects.bulk_create(items)


def _options_of(study: Study) -> ProtocolOptions:
    """A study's stored options (`ProtocolOptions` names its fields as the study does)."""
    names = [f.name for f in dataclasses.fields(ProtocolOptions) if f.name != "practice_datasets"]
    values = {name: getattr(study, name) for name in names}
    return ProtocolOptions(**values, practice_datasets=list(study.practice_datasets.all()))


def _arms_of(study: Study) -> list[ArmSpec]:
    return [ArmSpec(a.name, list(a.datasets.all()), a.parts) for a in study.arms.prefetch_related("datasets")]


def _plan_for(
    study: Study, *, real_datasets: Sequence[Dataset], arms: Sequence[ArmSpec], options: ProtocolOptions
) -> StudyPlan:
    """The plan of a study's settings with these pools: one mapping, used when it is created (unsaved,
    its pools not yet stored) and when its items are drawn later."""
    return study_plan(
        tissue_class=study.tissue_class,
        real_datasets=real_datasets,
        items_per_reader=study.items_per_reader,
        real_parts=study.real_parts,
        equivalence_margin=study.equivalence_margin,
        alpha=study.alpha,
        arms=arms,
        harmonise_jpeg_quality=study.harmonise_jpeg_quality,
        options=options,
    )


def _plan_of(study: Study) -> StudyPlan:
    real_datasets = list(study.real_datasets.all())
    return _plan_for(study, real_datasets=real_datasets, arms=_arms_of(study), options=_options_of(study))


def study_create(
    *,
    name: str,
    real_datasets: Sequence[Dataset],
    synthetic_datasets: Sequence[Dataset] = (),
    items_per_reader: int,
    tissue_class: str = "LYM",
    real_parts: int = 1,
    synthetic_parts: int = 1,
    same_items_for_all: bool = True,
    allow_changes: bool = False,
    ask_confidence: bool = True,
    instructions: str = "",
    readers: Iterable[Any] = (),
    created_by: Any = None,
    seed: int | None = None,
    equivalence_margin: float = 0.10,
    alpha: float = 0.05,
    planned_readers: int = 0,
    arms: Sequence[ArmSpec] | None = None,
    harmonise_jpeg_quality: int = 0,
    too_fast_ms: int = 1000,
    ask_profile: bool = True,
    ask_reasons: bool = False,
    reasons: Sequence[str] | None = None,
    show_personal_result: bool = False,
    options: ProtocolOptions = ProtocolOptions(),
) -> Study:
    """Build a study, draw its items and invite its readers, or refuse with every problem named.

    `arms`: the synthetic arms (default: one, "synthetic", of `synthetic_datasets`). The verdict's rule
    (margin, alpha) is part of the study from here on, frozen at its first answer.
    """
    if arms is None:
        arms = [ArmSpec(SINGLE_ARM, list(synthetic_datasets), synthetic_parts)]
    study = Study(
        name=name.strip(),
        tissue_class=tissue_class.strip().upper(),
        items_per_reader=items_per_reader,
        real_parts=real_parts,
        synthetic_parts=sum(arm.parts for arm in arms),
        equivalence_margin=equivalence_margin,
        alpha=alpha,
        planned_readers=planned_readers,
        microns_per_pixel=_pool_resolution(real_datasets),
        harmonise_jpeg_quality=harmonise_jpeg_quality,
        same_items_for_all=same_items_for_all,
        allow_changes=allow_changes,
        ask_confidence=ask_confidence,
        too_fast_ms=too_fast_ms,
        reasons=list(reasons) if reasons else default_reasons(),
        ask_reasons=ask_reasons,
        show_personal_result=show_personal_result,
        ask_profile=ask_profile,
        instructions=instructions,
        practice_items=options.practice_items,
        repeat_share=options.repeat_share,
        repeat_gap=options.repeat_gap,
        repeat_washout_days=options.repeat_washout_days,
        created_by=signed_in(created_by),
        **({"seed": seed} if seed is not None else {}),
    )
    plan = _plan_for(study, real_datasets=real_datasets, arms=arms, options=options)
    if show_personal_result and allow_changes:
        # A reopened study would let a reader who saw their result (and so learnt which answers were
        # wrong) change those answers.
        plan.problems.append(
            "A personal result at the close cannot go with answers that may be changed: once the study "
            "were reopened, readers could change the answers their result showed to be wrong."
        )
    if not study.name:
        plan.problems.insert(0, "The study needs a name.")
    elif has_control_characters(study.name):
        plan.problems.insert(
            0, "A study name cannot hold control characters (line breaks, tabs and the like)."
        )
    if not plan.ok:
        raise StudyError(" ".join(plan.problems))
    study.patch_size = plan.patch_size or imaging.PATCH_SIZE
    with transaction.atomic():
        study.save()
        study.real_datasets.set(real_datasets)
        for position, arm in enumerate(arms):
            row = StudyArm.objects.create(
                study=study, name=arm.name.strip(), parts=arm.parts, position=position
            )
            row.datasets.set(arm.datasets)
        study.synthetic_datasets.set({d.pk for arm in arms for d in arm.datasets})
        if options.practice_items:
            study.practice_datasets.set(options.practice_datasets)
            _draw_practice(study, plan)
        if same_items_for_all:
            _draw_item_set(study, study.seed, plan)
        study_event_record(
            study=study, kind=StudyEvent.Kind.CREATED, actor=created_by, after=_settings(study)
        )
        for reader in readers:
            study_invite(study=study, reader=reader, actor=created_by)
    return study


# --- The audit trail and the frozen protocol ------------------------------------------------------

PROTOCOL_SETTINGS = (
    "tissue_class",
    "items_per_reader",
    "real_parts",
    "synthetic_parts",
    "same_items_for_all",
    "allow_changes",
    "ask_confidence",
    "instructions",
    "equivalence_margin",
    "alpha",
    "planned_readers",
    "harmonise_jpeg_quality",
    "too_fast_ms",
    "ask_profile",
    "ask_reasons",
    "reasons",
    "practice_items",
    "repeat_share",
    "repeat_gap",
    "repeat_washout_days",
)


def _settings(study: Study) -> dict[str, Any]:
    return {name: getattr(study, name) for name in PROTOCOL_SETTINGS}


def study_event_record(
    *, study: Study, kind: str, actor: Any = None, before: dict | None = None, after: dict | None = None
) -> StudyEvent:
    """Add one row to the study's audit trail (rows are only ever added)."""
    return StudyEvent.objects.create(
        study=study,
        kind=kind,
        actor=signed_in(actor),
        before=before or {},
        after=after or {},
    )


def study_protocol(*, study: Study, at: Any = None) -> dict[str, Any]:
    """What the study's protocol hash covers: its settings, its seed, its pools, every item (token, patch
    content hash, truth, arm) and every reader enrolled by the freeze (`at`, default the study's
    `frozen_at`): assignment, reader, seed and a hash of their order. Readers enrolled later are events
    (`reader added`, with their seed), not protocol."""
    items = sorted(
        [token, content_hash, truth, arm or ""]
        for token, content_hash, truth, arm in study.items.values_list(
            "token", "patch__content_hash", "truth", "arm__name"
        )
    )
    at = at or study.frozen_at
    enrolled = Assignment.objects.filter(study=study).order_by("id")
    enrolled = enrolled.filter(invited_at__lte=at) if at is not None else enrolled
    return {
        "settings": _settings(study),
        "seed": study.seed,
        "real_datasets": sorted(study.real_datasets.values_list("pk", flat=True)),
        "synthetic_datasets": sorted(study.synthetic_datasets.values_list("pk", flat=True)),
        "arms": [
            {"name": a.name, "parts": a.parts, "datasets": sorted(d.pk for d in a.datasets.all())}
            for a in study.arms.prefetch_related("datasets")
        ],
        "items": items,
        "practice": sorted(study.practice.values_list("patch__content_hash", "truth")),
        "assignments": [
            [pk, reader, seed, protocol_hash({"order": order})]
            for pk, reader, seed, order in enrolled.values_list("pk", "reader_id", "seed", "order")
        ],
    }


def protocol_hash(protocol: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(protocol, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def study_freeze(*, study_id: int) -> None:
    """Freeze the study at its first answer: store its protocol hash, once."""
    with transaction.atomic():
        study = Study.objects.select_for_update().filter(pk=study_id, frozen_at__isnull=True).first()
        if study is None:
            return
        # The plan is at least the readers enrolled when the data start: a verdict given before all of
        # them finished would be a look chosen after seeing some of the data.
        study.planned_readers = max(
            study.planned_readers, study.assignments.filter(removed_at__isnull=True).count()
        )
        now = timezone.now()
        # The protocol as frozen is kept beside its hash, so that `study_verify` can name what changed.
        study.protocol = study_protocol(study=study, at=now)
        study.protocol_hash = protocol_hash(study.protocol)
        study.frozen_at = now
        study.save(update_fields=["planned_readers", "protocol", "protocol_hash", "frozen_at"])
        study_event_record(
            study=study, kind=StudyEvent.Kind.FROZEN, after={"protocol_hash": study.protocol_hash}
        )


def _order(items: dict[int, str], seed: int, stream: int = 2) -> list[str]:
    """The tokens of `items` (id -> token) in the order drawn from `seed` (a permutation of sorted ids)."""
    ordered = sorted(items)
    return [items[ordered[i]] for i in np.random.default_rng([seed, stream]).permutation(len(ordered))]


def _reader_order(study: Study, items: dict[int, str], seed: int) -> list[str]:
    """A reader's order: their items shuffled by their seed, with the study's repeat reads added."""
    return repeat_order(
        _order(items, seed),
        repeats=repeat_count(len(items), study.repeat_share),
        gap=study.repeat_gap,
        washout=study.repeat_washout_days > 0,
        seed=seed,
    )


def reader_remove(*, study: Study, assignment_id: int, reason: str, actor: Any = None) -> Assignment:
    """Take a reader out of a study: recorded with its reason; their answers are kept (and exported) and
    left out of every statistic, and their session can answer nothing more. Final: a removed reader is
    not put back (invite them to a new study)."""
    reason = " ".join(reason.split())
    if not reason:
        raise StudyError("Say why the reader is removed: the reason is part of the record.")
    if len(reason) > 500:
        raise StudyError("The reason is too long: at most 500 characters.")
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update().filter(pk=assignment_id, study_id=study.pk).first()
        )
        if assignment is None:
            raise StudyError("No such reader in this study.")
        if assignment.removed_at is not None:
            raise StudyError("This reader was removed already.")
        assignment.removed_at = timezone.now()
        assignment.save(update_fields=["removed_at"])
        study_event_record(
            study=study,
            kind=StudyEvent.Kind.READER_REMOVED,
            actor=actor,
            before={"reader": assignment.reader_id, "assignment": assignment.pk},
            after={
                "removed_at": assignment.removed_at.isoformat(),
                "reason": reason,
                "answers": Answer.objects.filter(assignment=assignment, label__isnull=False).count(),
            },
        )
    return assignment


def _amendment_if_beyond_plan(study: Study, assignment: Assignment, actor: Any) -> None:
    """A reader enrolled after the freeze beyond the planned readers changes the design the verdict was
    planned for: recorded as an amendment, which makes the verdict exploratory (`evaluation.stats`)."""
    frozen = Study.objects.filter(pk=study.pk).values_list("frozen_at", "planned_readers").first()
    if frozen is None or frozen[0] is None:
        return
    enrolled = Assignment.objects.filter(study_id=study.pk, removed_at__isnull=True).count()
    if enrolled > frozen[1]:  # a replacement for a removed reader is within the plan
        study_event_record(
            study=study,
            kind=StudyEvent.Kind.AMENDMENT,
            actor=actor,
            before={"planned_readers": frozen[1]},
            after={"readers": enrolled, "assignment": assignment.pk},
        )


def study_invite(*, study: Study, reader: Any, actor: Any = None) -> Assignment:
    """Give a reader their items in their own order (idempotent: a second invitation changes nothing)."""
    if not is_expert(reader):
        raise StudyError(f"{reader.get_username()} is not an expert: only experts read studies.")
    with transaction.atomic():
        existing = Assignment.objects.filter(study=study, reader=reader).first()
        if existing is not None:
            return existing
        assignment = Assignment.objects.create(study=study, reader=reader)
        if study.same_items_for_all:
            items = dict(study.items.values_list("id", "token"))
        else:
            plan = _plan_of(study)
            if not plan.ok:
                raise StudyError(" ".join(plan.problems))
            items = {item.pk: item.token for item in _draw_item_set(study, assignment.seed, plan)}
        assignment.order = _reader_order(study, items, assignment.seed)
        assignment.practice_order = _order(
            dict(study.practice.values_list("id", "token")), assignment.seed, 6
        )
        assignment.save(update_fields=["order", "practice_order"])
        study_event_record(
            study=study,
            kind=StudyEvent.Kind.READER_ADDED,
            actor=actor,
            after={"reader": reader.pk, "assignment": assignment.pk, "seed": assignment.seed},
        )
        _amendment_if_beyond_plan(study, assignment, actor)
    return assignment


def assignment_profile_set(
    *, assignment: Assignment, role: str, years: int, gi_subspecialty: bool, seen_synthetic: bool
) -> Assignment:
    """Store the reader's profile with their assignment. It may be given again until the first answer
    (each change recorded); after that, and once the study is closed, it is part of the record."""
    if not assignment.study.is_open:
        raise StudyError("This study is closed: the profile is part of its record now.")
    if Answer.objects.filter(assignment=assignment).exists():
        raise StudyError("Your first answer has been given: the profile stays as it was then.")
    if role not in ReaderRole.values:
        raise StudyError(f"Unknown role {role!r}: use one of {', '.join(ReaderRole.values)}.")
    if not 0 <= years <= 70:
        raise StudyError(f"Years in practice must be from 0 to 70, got {years}.")
    fields = ["profile_role", "profile_years", "profile_gi", "profile_seen_synthetic"]
    before = {name: getattr(assignment, name) for name in fields}
    given_before = assignment.profile_at is not None
    assignment.profile_role, assignment.profile_years = role, years
    assignment.profile_gi, assignment.profile_seen_synthetic = gi_subspecialty, seen_synthetic
    assignment.profile_at = timezone.now()
    with transaction.atomic():
        assignment.save(update_fields=[*fields, "profile_at"])
        after = {name: getattr(assignment, name) for name in fields}
        if given_before and after != before:
            study_event_record(
                study=assignment.study,
                kind=StudyEvent.Kind.PROFILE_CHANGED,
                actor=assignment.reader,
                before=before | {"assignment": assignment.pk},
                after=after,
            )
    return assignment


def assignment_order_audit(*, assignment: Assignment) -> bool:
    """Rebuild the reader's order from the stored seed and check it is the order they were given."""
    items = dict(
        StudyItem.objects.filter(study_id=assignment.study_id, token__in=assignment.order).values_list(
            "id", "token"
        )
    )
    return (
        len(items) == assignment.first_reads
        and _reader_order(assignment.study, items, assignment.seed) == assignment.order
    )


def study_protocol_set(*, study: Study, equivalence_margin: float, alpha: float, actor: Any = None) -> Study:
    """Change the verdict's rule of a study that has no answer yet; refused once one has arrived."""
    problems = protocol_problems(equivalence_margin=equivalence_margin, alpha=alpha)
    if problems:
        raise StudyError(" ".join(problems))
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if Answer.objects.filter(assignment__study=locked, label__isnull=False).exists():
            raise StudyError(
                "This study's protocol is frozen: its first answer has arrived, and the rule its verdict "
                "follows cannot change after that."
            )
        before = {"equivalence_margin": locked.equivalence_margin, "alpha": locked.alpha}
        locked.equivalence_margin, locked.alpha = equivalence_margin, alpha
        locked.save(update_fields=["equivalence_margin", "alpha"])
        after = {"equivalence_margin": equivalence_margin, "alpha": alpha}
        study_event_record(
            study=locked, kind=StudyEvent.Kind.PROTOCOL, actor=actor, before=before, after=after
        )
    study.equivalence_margin, study.alpha = equivalence_margin, alpha
    return study


def study_set_status(*, study: Study, status: str, actor: Any = None) -> Study:
    if status not in Study.Status.values:
        raise StudyError(f"Unknown status {status!r}.")
    with transaction.atomic():
        before = study.status
        study.status = status
        study.save(update_fields=["status"])
        if before != status:
            study_event_record(
                study=study,
                kind=StudyEvent.Kind.STATUS,
                actor=actor,
                before={"status": before},
                after={"status": status},
            )
    return study


# --- Reading: serving items and taking answers ---------------------------------------------------


def image_fetch_count(*, assignment_id: int, item_id: int) -> int:
    """Count one fetch of an item's image by a reader; returns the count in the current window.

    One statement whatever the item (an upsert that starts a new window when the old one is over), so
    the count costs every item the same.
    """
    table, qn = ImageFetch._meta.db_table, connection.ops.quote_name
    now = timezone.now()
    window_over = now - timedelta(seconds=settings.ITEM_IMAGE_FETCH_WINDOW_S)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (assignment_id, item_id, window_start, {qn('count')}) "  # noqa: S608
            "VALUES (%s, %s, %s, 1) ON CONFLICT (assignment_id, item_id) DO UPDATE SET "
            f"{qn('count')} = CASE WHEN {table}.window_start < %s THEN 1 "
            f"ELSE {table}.{qn('count')} + 1 END, "
            f"window_start = CASE WHEN {table}.window_start < %s THEN %s ELSE {table}.window_start END "
            f"RETURNING {qn('count')}",
            [assignment_id, item_id, now, window_over, window_over, now],
        )
        row = cursor.fetchone()
    return int(row[0])


@dataclass(frozen=True)
class NextItem:
    """What the expert page needs: no truth, no patch id, only the item's opaque token."""

    token: str | None
    position: int  # 0-based; equals `answered` (answers fill the order from the start)
    total: int
    answered: int
    preload_token: str | None
    # A second session after a washout that has not opened yet: when it opens (no token until then).
    opens_at: Any = None

    @property
    def finished(self) -> bool:
        return self.token is None and self.opens_at is None


def _record_shown(*, assignment_id: int, token: str, position: int, read: int) -> None:
    """Create the item's answer row with its first-shown time; a second serve changes nothing.

    One statement, no transaction around it (bulk_create would add BEGIN/COMMIT): this runs on
    every answer. ON CONFLICT DO NOTHING is understood by PostgreSQL and SQLite alike.
    """
    table, read_column = Answer._meta.db_table, connection.ops.quote_name("read")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (assignment_id, item_id, position, {read_column}, shown_at) "  # noqa: S608
            f"SELECT %s, id, %s, %s, %s FROM {StudyItem._meta.db_table} WHERE token = %s "
            f"ON CONFLICT (assignment_id, item_id, {read_column}) DO NOTHING",
            [assignment_id, position, read, timezone.now(), token],
        )


def second_session_wait(*, assignment: Assignment, answered: int) -> Any:
    """When the reader's second session (repeat reads after a washout) opens, while they wait for it: at
    the end of their first session, until the washout after their last first read is over; else None."""
    if answered != assignment.first_reads or answered >= assignment.total:
        return None  # mid-session, finished, or a study without repeat reads
    days = assignment.study.repeat_washout_days
    last = (
        Answer.objects.filter(assignment=assignment, position=answered - 1)
        .values_list("answered_at", flat=True)
        .first()
        if days
        else None
    )
    opens = None if last is None else last + timedelta(days=days)
    return opens if opens is not None and timezone.now() < opens else None


def answer_next(*, assignment: Assignment, answered: int | None = None) -> NextItem:
    """The reader's first unanswered item, recording when it was first shown.

    Answers fill a reader's order from the start (only the first unanswered item is ever served),
    so the next position is the number answered; a caller that knows it passes it in. A repeat read is
    the item's read 2; a second session waits for its washout (`second_session_wait`).
    """
    if answered is None:
        answered = assignment_answered_count(assignment=assignment)
    total = assignment.total
    if answered >= total:
        return NextItem(None, total, total, answered, None)
    opens = second_session_wait(assignment=assignment, answered=answered)
    if opens is not None:
        return NextItem(None, answered, total, answered, None, opens_at=opens)
    order = assignment.order
    token = order[answered]
    read = 1 + order[:answered].count(token)
    _record_shown(assignment_id=assignment.pk, token=token, position=answered, read=read)
    following = order[answered + 1] if answered + 1 < total else None
    return NextItem(token, answered, total, answered, following)


@dataclass(frozen=True)
class SubmitResult:
    answer: Answer  # with its assignment (order included); its item is not loaded
    token: str
    created: bool  # False: the stored answer of an earlier identical submit, or a revision
    changed_from: dict[str, Any] | None = None  # a revision: the label and confidence it replaced


_ANSWER_TAKE_SETS = ("label", "confidence", "answered_at", "visible_ms")  # what a first answer writes


def _answer_take_sql(with_confidence: bool) -> str:
    """One statement that finds the reader's shown, unanswered item in an open study and labels it.

    The hot path of the expert API: it replaces a look-up plus an update (two round trips and two ORM
    compilations) by one round trip. It returns what the response needs, the reader's order included
    (a scalar subquery: SQLite's RETURNING may not name a joined table). PostgreSQL and SQLite (3.35+)
    both run it. When it takes nothing, `answer_submit` finds out why on the explanatory path.
    """
    qn = connection.ops.quote_name
    answer, assignment = qn(Answer._meta.db_table), qn(Assignment._meta.db_table)
    study, item = qn(Study._meta.db_table), qn(StudyItem._meta.db_table)
    confidence_allowed = f"AND s.{qn('ask_confidence')} " if with_confidence else ""
    sets = ", ".join(f"{qn(column)} = %s" for column in _ANSWER_TAKE_SETS)
    return (
        f"UPDATE {answer} SET {sets} "  # noqa: S608
        f"WHERE label IS NULL AND id = ("
        f"SELECT a.id FROM {answer} a JOIN {assignment} g ON g.id = a.assignment_id "
        f"JOIN {study} s ON s.id = g.study_id JOIN {item} i ON i.id = a.item_id "
        f"WHERE a.label IS NULL AND g.study_id = %s AND g.reader_id = %s AND i.token = %s AND s.status = %s "
        f"AND g.{qn('removed_at')} IS NULL "
        f"{confidence_allowed}) "
        f"RETURNING id, assignment_id, item_id, position, "
        f"(SELECT g.{qn('order')} FROM {assignment} g WHERE g.id = assignment_id)"
    )


def confidence_valid(value: Any) -> bool:
    """A confidence is a whole number from 1 to 5 (not a string, a float or a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5


def _answer_take(
    *, study_id: int, reader_id: int, token: str, label: str, confidence: int | None, visible_ms: int | None
) -> Answer | None:
    """Label a shown, unanswered item of an open study in one statement; None when that is not the case."""
    taken = dict(zip(_ANSWER_TAKE_SETS, (label, confidence, timezone.now(), visible_ms), strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            _answer_take_sql(confidence is not None),
            [*taken.values(), study_id, reader_id, token, Study.Status.OPEN.value],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    answer_id, assignment_id, item_id, position, order = row
    assignment = Assignment(
        id=assignment_id,
        study_id=study_id,
        reader_id=reader_id,
        order=json.loads(order) if isinstance(order, str) else order,  # jsonb comes back as text
    )
    answer = Answer(id=answer_id, assignment=assignment, item_id=item_id, position=position, **taken)
    if position + 1 >= assignment.total:
        Assignment.objects.filter(pk=assignment_id, finished_at__isnull=True).update(
            finished_at=answer.answered_at
        )
    return answer


def answer_submit(
    *,
    study_id: int,
    reader: Any,
    token: Any,
    label: Any,
    confidence: Any = None,
    visible_ms: int | None = None,
    position: int | None = None,
    revise: bool = False,
) -> SubmitResult:
    """Store a reader's label for an item they were shown; committed before this returns. `visible_ms`:
    the time the page measured (`turing.timing`), kept with the first answer only. `position`: the place
    in the reader's order an answer is for (an item read twice has two).

    An answer is taken as meant: one for a read already answered differently is refused (409, naming
    what is stored), since it comes from a page that is out of date (Back, Forward, a second tab),
    unless it is an explicit revision (`revise`, with its `position`: the page's Back), which the study
    must allow and the audit trail records.

    A well-formed first answer takes one statement (`_answer_take`); anything else (a repeat, a change,
    an item not shown, a closed study, bad input) goes through the checks below, which say what is wrong.
    """
    if not isinstance(token, str) or not token:
        raise AnswerError("An item token is required.")
    if revise and position is None:
        raise AnswerError("A revision names the position of the answer it changes.")
    fast = position is None and label in Answer.Label.values
    if fast and (confidence is None or confidence_valid(confidence)):
        taken = _answer_take(
            study_id=study_id,
            reader_id=reader.pk,
            token=token,
            label=label,
            confidence=confidence,
            visible_ms=visible_ms,
        )
        if taken is not None:
            if taken.position == 0:  # a reader's first answer: the study may have had none before
                study_freeze(study_id=study_id)
            return SubmitResult(taken, token, created=True)
    answers = Answer.objects.select_related("assignment__study").filter(
        assignment__study_id=study_id, assignment__reader_id=reader.pk, item__token=token
    )
    if position is not None:
        answers = answers.filter(position=position)
    # The read on screen: an unanswered one first, else the latest (an item may be read twice).
    answer = answers.order_by(F("answered_at").desc(nulls_first=True)).first()
    if answer is None:
        raise AnswerError("No such item among the items you were shown.", 404)
    assignment, study = answer.assignment, answer.assignment.study
    _refuse_if_removed(assignment)
    if not study.is_open:
        raise AnswerError("This study is closed: answers are no longer taken.", 409)
    if label not in Answer.Label.values:
        raise AnswerError(f"Unknown label {label!r}: use 'real' or 'synthetic'.")
    if confidence is not None:
        if not study.ask_confidence:
            raise AnswerError("This study does not ask for a confidence rating.")
        if not confidence_valid(confidence):
            raise AnswerError(f"Confidence must be a whole number from 1 to 5, got {confidence!r}.")
    now = timezone.now()
    updated = Answer.objects.filter(pk=answer.pk, label__isnull=True).update(
        label=label, confidence=confidence, answered_at=now, visible_ms=visible_ms
    )
    if updated:  # only when the item or study changed since the statement above
        answer.label, answer.confidence, answer.answered_at = label, confidence, now
        if answer.position + 1 >= assignment.total:
            Assignment.objects.filter(pk=assignment.pk, finished_at__isnull=True).update(finished_at=now)
        if answer.position == 0:
            study_freeze(study_id=study.pk)
        return SubmitResult(answer, token, created=True)
    answer.refresh_from_db(fields=["label", "confidence", "answered_at", "changed_at"])
    if answer.label == label and answer.confidence == confidence:
        return SubmitResult(answer, token, created=False)  # a repeated submit: nothing new is stored
    if not study.allow_changes:
        raise AnswerError("This item is already answered, and this study does not allow changes.", 409)
    stored = answer_words(answer.label, answer.confidence)
    if not revise:
        raise AnswerError(
            f"Patch {answer.position + 1} is already answered ({stored}): this page was out of date, so "
            "nothing was changed. To change that answer, go back to it.",
            409,
        )
    with transaction.atomic():
        before = {"label": answer.label, "confidence": answer.confidence}
        Answer.objects.filter(pk=answer.pk).update(label=label, confidence=confidence, changed_at=now)
        study_event_record(
            study=study,
            kind=StudyEvent.Kind.ANSWER_CHANGED,
            actor=reader,
            before={"item": token, "position": answer.position, "read": answer.read, **before},
            after={"item": token, "position": answer.position, "label": label, "confidence": confidence},
        )
    answer.refresh_from_db(fields=["label", "confidence", "answered_at", "changed_at"])
    return SubmitResult(answer, token, created=False, changed_from=before)


def _refuse_if_removed(assignment: Assignment) -> None:
    """A removed reader's session takes nothing more (`reader_remove`)."""
    if assignment.removed_at is not None:
        raise AnswerError("You are no longer a reader of this study: nothing more is taken.", 404)


def answer_words(label: str | None, confidence: int | None) -> str:
    """An answer as the reading page shows it: "real · 3", or "real" without a confidence."""
    return f"{label} · {confidence}" if confidence is not None else str(label)


def answer_reasons_set(*, study_id: int, reader: Any, token: Any, reasons: Any, click: Any = None) -> Answer:
    """Why the reader called an item synthetic: reasons from the study's list, and an optional click
    (x, y as shares of the patch, from its top-left). Only for the reader's own "synthetic" answers."""
    if not isinstance(token, str) or not token:
        raise AnswerError("An item token is required.")
    answer = (
        Answer.objects.select_related("assignment__study")
        .filter(assignment__study_id=study_id, assignment__reader_id=reader.pk, item__token=token)
        .order_by(F("answered_at").desc(nulls_last=True))  # the latest answered read
        .first()
    )
    if answer is None:
        raise AnswerError("No such item among the items you were shown.", 404)
    study = answer.assignment.study
    _refuse_if_removed(answer.assignment)
    if not study.ask_reasons:
        raise AnswerError("This study does not ask why.", 409)
    if not study.is_open:
        raise AnswerError("This study is closed: its answers and reasons are final.", 409)
    given = bool(answer.reasons) or answer.click_x is not None
    if answer.assignment.finished_at is not None:
        last = Answer.objects.filter(assignment=answer.assignment).order_by(
            F("answered_at").desc(nulls_last=True)
        )
        if given or last.values_list("pk", flat=True).first() != answer.pk:
            # The last answer finishes the reading; its reasons come just after, once.
            raise AnswerError("You have finished this study: your answers and reasons are final.", 409)
    if answer.label != Answer.Label.SYNTHETIC:
        raise AnswerError("Reasons go with an answer of 'synthetic' only.", 409)
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise AnswerError("Reasons must be a list of the study's reasons.")
    unknown = [r for r in reasons if r not in study.reasons]
    if unknown:
        raise AnswerError(f"Unknown reason(s) {', '.join(map(repr, unknown))}: use the study's list.")
    x = y = None
    if click is not None:
        if not (
            isinstance(click, list)
            and len(click) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1 for v in click)
        ):
            raise AnswerError("A click is [x, y], each from 0 to 1 of the patch.")
        x, y = float(click[0]), float(click[1])
    before = {"reasons": answer.reasons, "click": [answer.click_x, answer.click_y]}
    answer.reasons = list(dict.fromkeys(reasons))
    answer.click_x, answer.click_y = x, y
    after = {"reasons": answer.reasons, "click": [x, y]}
    with transaction.atomic():
        answer.save(update_fields=["reasons", "click_x", "click_y"])
        if given and after != before:
            study_event_record(
                study=study,
                kind=StudyEvent.Kind.REASONS_CHANGED,
                actor=reader,
                before=before | {"token": token, "read": answer.read},
                after=after,
            )
    return answer


# --- Practice ----------------------------------------------------------------------------------------


def practice_next(*, assignment: Assignment) -> NextItem:
    """The reader's next practice patch (`Study.practice_items`); finished once all are answered."""
    order = assignment.practice_order
    answered = PracticeAnswer.objects.filter(assignment=assignment).count()
    if answered >= len(order):
        return NextItem(None, len(order), len(order), answered, None)
    following = order[answered + 1] if answered + 1 < len(order) else None
    return NextItem(order[answered], answered, len(order), answered, following)


def practice_answer_submit(
    *, assignment: Assignment, token: Any, label: Any, confidence: Any = None
) -> PracticeAnswer:
    """Take a practice answer (for the patch on screen) and return it with its item, whose truth the page
    then shows. Practice answers are never part of a statistic; a repeated submit returns the first."""
    if not isinstance(token, str) or token not in assignment.practice_order:
        raise AnswerError("No such practice patch among yours.", 404)
    study = assignment.study
    if not study.is_open:
        raise AnswerError("This study is closed: answers are no longer taken.", 409)
    if label not in Answer.Label.values:
        raise AnswerError(f"Unknown label {label!r}: use 'real' or 'synthetic'.")
    if confidence is not None and not (study.ask_confidence and confidence_valid(confidence)):
        raise AnswerError("Confidence must be a whole number from 1 to 5, in a study that asks for one.")
    item = PracticeItem.objects.get(study=study, token=token)
    existing = PracticeAnswer.objects.filter(assignment=assignment, item=item).select_related("item").first()
    if existing is not None:
        return existing
    if practice_next(assignment=assignment).token != token:
        raise AnswerError("Answer the practice patches in their order.", 409)
    answer, _ = PracticeAnswer.objects.get_or_create(
        assignment=assignment, item=item, defaults={"label": label, "confidence": confidence}
    )
    return answer


# --- Invitations by e-mail -------------------------------------------------------------------------


@dataclass
class InvitationReport:
    """What an invitation request did, one line per address: the page says it once, in full."""

    sent: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "address: why"

    def lines(self) -> list[str]:
        out = []
        if self.sent:
            out.append(f"Invitation sent to {', '.join(self.sent)}.")
        if self.already:
            out.append(f"Already invited (use Send again if the link was lost): {', '.join(self.already)}.")
        out += [f"Not invited: {line}." for line in self.refused]
        return out


def _invitation_issue(invitation: Invitation) -> str:
    """Give an invitation a new link secret (only its hash is kept), sent now and valid for
    INVITATION_VALID_DAYS; returns the secret for the mail. The caller saves the invitation."""
    secret = secrets.token_urlsafe(32)
    invitation.secret_hash = hashlib.sha256(secret.encode()).hexdigest()
    invitation.sent_at = timezone.now()
    invitation.expires_at = invitation.sent_at + timedelta(days=settings.INVITATION_VALID_DAYS)
    return secret


def _invitation_mail(*, invitation: Invitation, secret: str, site_url: str) -> None:
    link = f"{site_url.rstrip('/')}{reverse('turing:invitation_accept', args=[secret])}"
    body = render_to_string(
        "turing/email/invitation.txt",
        {"study": invitation.study, "link": link, "expires_at": invitation.expires_at},
    )
    send_mail(f"Invitation: {invitation.study.name}", body, None, [invitation.email])


def _expert_for(email: str) -> Any:
    """The expert account with this address, made when there is none (signed in by the link, no password)."""
    existing = get_user_model().objects.filter(email__iexact=email).order_by("id").first()
    if existing is not None:
        return existing
    user, _ = user_create(username=email, role="expert", email=email, validate=False)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    return user


def invitations_send(
    *, study: Study, emails: Iterable[str], created_by: Any, site_url: str
) -> InvitationReport:
    """Invite each address: an expert account if there is none, the reader's items, and an e-mail with
    a link that signs them in once. An address already invited to this study is said, not re-sent."""
    report = InvitationReport()
    if not study.is_open:
        raise StudyError("This study is closed: reopen it before inviting readers.")
    for raw in dict.fromkeys(e.strip().lower() for e in emails if e.strip()):
        try:
            validate_email(raw)
        except ValidationError:
            report.refused.append(f"{raw}: not an e-mail address")
            continue
        if Invitation.objects.filter(study=study, email=raw).exists():
            report.already.append(raw)
            continue
        with transaction.atomic():
            try:
                reader = _expert_for(raw)
            except ValidationError:  # the address is the user name of an account with another address
                report.refused.append(
                    f"{raw}: a user of that name exists with another e-mail address; invite them from the "
                    "list of experts, or give their account this address"
                )
                continue
            if not is_expert(reader):
                report.refused.append(f"{raw}: the account with this address is not an expert's")
                continue
            study_invite(study=study, reader=reader, actor=created_by)
            invitation = Invitation(study=study, email=raw, reader=reader, created_by=signed_in(created_by))
            secret = _invitation_issue(invitation)
            invitation.save()
            transaction.on_commit(
                partial(_invitation_mail, invitation=invitation, secret=secret, site_url=site_url)
            )
        report.sent.append(raw)
    return report


def invitation_resend(*, invitation: Invitation, site_url: str) -> Invitation:
    """A new link (the old one stops working), valid for another INVITATION_VALID_DAYS. A withdrawn
    invitation stays withdrawn: sending it again would revive what a manager ended."""
    if invitation.revoked_at is not None:
        raise StudyError(
            f"The invitation of {invitation.email} was withdrawn, and a withdrawn invitation is not sent "
            "again: invite the address anew if they should read."
        )
    secret = _invitation_issue(invitation)
    invitation.used_at = invitation.revoked_at = None
    invitation.times_sent += 1
    invitation.save()
    _invitation_mail(invitation=invitation, secret=secret, site_url=site_url)
    return invitation


def invitation_revoke(*, invitation: Invitation, actor: Any = None) -> bool:
    """Withdraw the link. An invitation never used takes its reader's enrolment with it when they have
    answered nothing (recorded); True when it did."""
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if locked.revoked_at is None:
            locked.revoked_at = invitation.revoked_at = timezone.now()
            locked.save(update_fields=["revoked_at"])
        if locked.used_at is not None:
            return False
        assignment = Assignment.objects.filter(study_id=locked.study_id, reader_id=locked.reader_id).first()
        if assignment is None or Answer.objects.filter(assignment=assignment).exists():
            return False
        study_event_record(
            study=locked.study,
            kind=StudyEvent.Kind.READER_REMOVED,
            actor=actor,
            before={"reader": locked.reader_id, "assignment": assignment.pk, "seed": assignment.seed},
            after={"why": "invitation withdrawn before it was used"},
        )
        assignment.delete()
    return True


class InvitationError(ValueError):
    """A link that cannot be used; the message says why."""


def invitation_accept(*, secret: str) -> Invitation:
    """Use a link once: the invitation it names, marked used; or InvitationError saying why not."""
    secret_hash = hashlib.sha256(secret.encode()).hexdigest()
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("reader", "study")
            .filter(secret_hash=secret_hash)
            .first()
        )
        if invitation is None:
            raise InvitationError("This link is not valid: it may have been replaced by a newer one.")
        state = invitation.state(timezone.now())
        if state != "waiting":
            why = {"revoked": "was withdrawn", "used": "has been used already", "expired": "has expired"}[
                state
            ]
            raise InvitationError(f"This invitation link {why}.")
        invitation.used_at = timezone.now()
        invitation.save(update_fields=["used_at"])
    return invitation


# --- The demo's comparison study ----------------------------------------------------------------------

DEMO_STUDY = "Demo: the demo GAN's last checkpoint against its first"


def demo_study_build(*, training_run: TrainingRun) -> Study | None:
    """The demo's two-arm study, made once every sampling its training run asked for is stored: the
    real patches it trained on against its last and its first checkpoint's samples, read by every
    expert. None while a sampling is still running, or when it exists already."""
    wanted = training_run.sample_after
    if not wanted.get("demo_study"):
        return None
    runs = list(
        SamplingRun.objects.filter(checkpoint__run=training_run).select_related("checkpoint", "dataset")
    )
    if len(runs) < 1 + len(wanted.get("also_from_steps", [])):
        return None
    if any(r.dataset.patches.count() < r.count for r in runs):
        return None
    runs.sort(key=lambda r: -r.checkpoint.step)
    last_step = runs[0].checkpoint.step
    arms = [
        ArmSpec(
            f"{'last' if r.checkpoint.step == last_step else 'early'} checkpoint (step {r.checkpoint.step})",
            [r.dataset],
            1,
        )
        for r in runs
    ]
    tissue_class = str(wanted["tissue_class"]).upper()
    real = [training_run.dataset]
    fits = study_plan(
        tissue_class=tissue_class, real_datasets=real, arms=arms, items_per_reader=2, real_parts=len(arms)
    )
    with transaction.atomic():
        TrainingRun.objects.select_for_update().filter(pk=training_run.pk).first()  # one caller at a time
        if Study.objects.filter(name=DEMO_STUDY).exists():
            return None
        experts = get_user_model().objects.filter(groups__name=EXPERTS_GROUP, is_active=True)
        return study_create(
            name=DEMO_STUDY,
            real_datasets=real,
            arms=arms,
            real_parts=len(arms),
            tissue_class=tissue_class,
            items_per_reader=fits.max_items,
            instructions=(
                "A demo: each patch is a real H&E lymphocyte patch or one made by the demo GAN (a CPU "
                "demo configuration, not the paper's model). Label each as real or synthetic."
            ),
            readers=list(experts.order_by("username")),
            created_by=training_run.created_by,
        )


# --- Verifying a frozen study ---------------------------------------------------------------------------


def study_verify(*, study: Study) -> list[str]:
    """What changed in a frozen study's record since its freeze, even by SQL, each difference named
    ("item X's truth", "assignment Y's reader", "setting F"); empty when the record is intact.

    Recomputes the protocol from the rows as they are now and compares it with the protocol kept at the
    freeze, whose own hash must still be the stored one; readers enrolled after the freeze are checked
    against their enrolment records. Answers and events are not yet in a hash chain: an edit of an
    answer row is not found here."""
    if study.frozen_at is None:
        if Answer.objects.filter(assignment__study=study, label__isnull=False).exists():
            return ["the study has answers but is not frozen: its freeze was removed"]
        return []
    frozen = study.protocol
    now = study_protocol(study=study)
    if not frozen:
        # Frozen before the protocol was kept beside its hash: only the hash, in the form of then, can
        # be checked, and a difference cannot be named.
        if protocol_hash(_protocol_before_kept(now)) == study.protocol_hash:
            return []
        return ["the protocol differs from its hash at the freeze (frozen before differences could be named)"]
    differences = []
    if protocol_hash(frozen) != study.protocol_hash:
        differences.append("the protocol kept at the freeze no longer matches its hash")
    for name in sorted(set(frozen.get("settings", {})) | set(now["settings"])):
        then, current = frozen.get("settings", {}).get(name), now["settings"].get(name)
        if then != current:
            differences.append(f"setting {name}: {then!r} at the freeze, {current!r} now")
    for key in ("seed", "real_datasets", "synthetic_datasets", "arms", "practice"):
        if frozen.get(key) != now[key]:
            differences.append(f"the study's {key.replace('_', ' ')} changed since the freeze")
    fields = ("patch content", "truth", "arm")
    then_items = {row[0]: row[1:] for row in frozen.get("items", [])}
    now_items = {row[0]: row[1:] for row in now["items"]}
    for token in sorted(set(then_items) | set(now_items)):
        if token not in now_items or token not in then_items:
            differences.append(f"item {token} was {'removed' if token not in now_items else 'added'}")
            continue
        for what, a, b in zip(fields, then_items[token], now_items[token], strict=True):
            if a != b:
                differences.append(f"item {token}'s {what}: {a!r} at the freeze, {b!r} now")
    then_readers = {row[0]: row[1:] for row in frozen.get("assignments", [])}
    now_readers = {row[0]: row[1:] for row in now["assignments"]}
    for pk in sorted(set(then_readers) | set(now_readers)):
        if pk not in now_readers or pk not in then_readers:
            differences.append(f"assignment {pk} {'is gone' if pk not in now_readers else 'appeared'}")
            continue
        for what, a, b in zip(("reader", "seed", "order"), then_readers[pk], now_readers[pk], strict=True):
            if a != b:
                differences.append(f"assignment {pk}'s {what} changed since the freeze")
    enrolled = {
        e.after.get("assignment"): e.after
        for e in study.events.filter(kind=StudyEvent.Kind.READER_ADDED, at__gt=study.frozen_at)
    }
    later = Assignment.objects.filter(study=study, invited_at__gt=study.frozen_at)
    for pk, reader, seed in later.values_list("pk", "reader_id", "seed"):
        record = enrolled.get(pk)
        if record is None:
            differences.append(f"assignment {pk} has no enrolment record")
        elif (record.get("reader"), record.get("seed")) != (reader, seed):
            differences.append(f"assignment {pk}'s reader or seed differs from its enrolment record")
    return differences


def _protocol_before_kept(protocol: dict[str, Any]) -> dict[str, Any]:
    """A protocol in the form studies frozen before it was kept were hashed in: no planned readers, no
    assignments, items as (content hash, truth, arm)."""
    settings = {k: v for k, v in protocol["settings"].items() if k != "planned_readers"}
    items = sorted([content_hash, truth, arm] for _token, content_hash, truth, arm in protocol["items"])
    rest = {k: v for k, v in protocol.items() if k not in ("settings", "items", "assignments")}
    return rest | {"settings": settings, "items": items}
