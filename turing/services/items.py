"""Drawing a study's items and practice patches, their blinded bytes, readers' orders, and the shortcut
check on what readers are shown."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.core.cache import cache
from django.core.files.storage import default_storage

from analysis import shortcuts
from gan import imaging
from gan.models import Dataset, Patch, Source
from turing.models import (
    PracticeItem,
    Study,
    StudyArm,
    StudyItem,
    StudyItemImage,
)
from turing.services.design import StudyPlan, pool_patches, repeat_count
from turing.services.errors import StudyError


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
    item_images_make(study=study, items=created)
    return created


def item_transform(study: Study, token: str) -> int:
    """The symmetry an item is shown in (`gan.imaging.symmetry`): with `Study.equal_transforms`, one of
    the eight drawn alike for every item from the study's seed and the item's token (so that it can be
    recomputed from the protocol), whatever its truth; otherwise 0, the patch as stored."""
    if not study.equal_transforms:
        return 0
    digest = hashlib.sha256(f"{study.seed}:{token}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % imaging.SYMMETRIES


def _blinded_pngs(
    transforms: dict[int, int], jpeg_quality: int, stain: imaging.StainTarget | None = None
) -> dict[int, bytes]:
    """Patch id -> the blinded bytes an expert receives for it, through the study's final pipeline
    (`transforms`: patch id -> its item's symmetry; `stain`: the study's stain target, None for no
    normalisation; `jpeg_quality`: its harmonisation, 0 for none); made once per item, never per
    request."""
    rows = Patch.objects.filter(pk__in=set(transforms)).values_list("pk", "image", "content_hash")
    pngs = {}
    for patch_id, name, content_hash in rows:
        with default_storage.open(name, "rb") as handle:
            data = handle.read()
        # The stored file must still be the patch it was imported as: a file swapped in storage (by
        # anyone with write access to the bucket or folder) would otherwise be shown under its name.
        if hashlib.sha256(imaging.decode_png_array(data).tobytes()).hexdigest() != content_hash:
            raise StudyError(
                f"patch {patch_id}'s stored image ({name}) is not the picture it was imported as "
                "(its pixels no longer match its content hash): the study was not built"
            )
        pngs[patch_id] = imaging.blinded_png(data, jpeg_quality, transforms[patch_id], stain)
    return pngs


STAIN_REFERENCE = 16  # real patches whose mosaic is a study's stain target


def stain_target_of(*, real_datasets: Sequence[Dataset], tissue_class: str, seed: int) -> list[list[float]]:
    """A study's Reinhard target: fitted on a mosaic of up to `STAIN_REFERENCE` patches of its real pool
    drawn by its seed, so that every item, real or synthetic, is brought to the real pool's own colour."""
    ids = sorted(pool_patches(real_datasets, tissue_class, Source.REAL).values_list("id", flat=True))
    if not ids:
        return []
    rng = np.random.default_rng([seed, 8])
    chosen = sorted(int(i) for i in rng.choice(ids, size=min(STAIN_REFERENCE, len(ids)), replace=False))
    return imaging.stain_target(np.concatenate(list(_stored_pixels(chosen, 0)), axis=0))


def item_images_make(*, study: Study, items: Sequence[StudyItem]) -> None:
    """Make, once, the blinded bytes each item is served as (see `StudyItemImage`)."""
    transforms = {i.patch_id: item_transform(study, i.token) for i in items}
    pngs = _blinded_pngs(transforms, study.harmonise_jpeg_quality, study.stain_target or None)
    images = [StudyItemImage(item_id=item.pk, png=pngs[item.patch_id]) for item in items]
    StudyItemImage.objects.bulk_create(images, batch_size=200)


SHORTCUT_SAMPLE = 150  # patches of each kind the builder's check reads from the pools


def _shortcut_dict(result: shortcuts.ShortcutResult) -> dict[str, Any]:
    return dataclasses.asdict(result) | {
        "strongest": result.strongest,
        "severe": result.severe,
        "rule": shortcuts.RULE,
    }


def _stored_pixels(
    patch_ids: Sequence[int], jpeg_quality: int, stain: imaging.StainTarget | None = None
) -> np.ndarray:
    files = dict(Patch.objects.filter(pk__in=patch_ids).values_list("pk", "image"))
    arrays = []
    for pk in patch_ids:
        with default_storage.open(files[pk], "rb") as handle:
            pixels = imaging.stain_normalised(imaging.decode_png_array(handle.read()), stain)
            arrays.append(imaging.harmonised(pixels, jpeg_quality))
    return np.stack(arrays) if arrays else np.zeros((0, 1, 1, 3), np.uint8)


def shortcut_check_pools(
    *,
    tissue_class: str,
    real_datasets: Sequence[Dataset],
    synthetic_datasets: Sequence[Dataset],
    jpeg_quality: int = 0,
    stain: bool = False,
) -> dict[str, Any]:
    """The shortcut check on up to `SHORTCUT_SAMPLE` patches of each kind from the pools, through the
    final pipeline they would be shown through (`stain`: normalised to the real pool's colour); cached,
    since the builder's preview asks on each change."""
    tissue_class = tissue_class.strip().upper()
    ids = [
        sorted(pool_patches(pools, tissue_class, source).values_list("id", flat=True))
        for pools, source in ((real_datasets, Source.REAL), (synthetic_datasets, Source.SYNTHETIC))
    ]
    # Keyed by the patches' content, not only their ids: ids are reused (another database, a test's),
    # and a cached result must be of these very pixels.
    contents = sorted(Patch.objects.filter(pk__in=[*ids[0], *ids[1]]).values_list("content_hash", flat=True))
    key = "shortcuts:" + hashlib.sha256(json.dumps([ids, contents, jpeg_quality, stain]).encode()).hexdigest()
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
        target = (
            stain_target_of(real_datasets=real_datasets, tissue_class=tissue_class, seed=0) if stain else None
        )
        result = shortcuts.shortcut_check(
            _stored_pixels(chosen[0], jpeg_quality, target), _stored_pixels(chosen[1], jpeg_quality, target)
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
            stain=bool(study.stain_target),
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


def item_set_draw(study: Study, seed: int, plan: StudyPlan) -> list[StudyItem]:
    """The real draw first, then each arm in order, from one stream: a one-arm study draws what a
    study drew before arms existed."""
    rng = np.random.default_rng([seed, 1])
    practice = list(study.practice.values_list("patch__content_hash", flat=True))
    real_ids = list(
        pool_patches(study.real_datasets.all(), study.tissue_class, Source.REAL, practice).values_list(
            "id", flat=True
        )
    )
    real = _draw(real_ids, plan.n_real, rng)
    by_name = {a.name: a for a in plan.arms}
    arm_ids = []
    for arm in study.arms.all():
        ids = list(
            pool_patches(arm.datasets.all(), study.tissue_class, Source.SYNTHETIC, practice).values_list(
                "id", flat=True
            )
        )
        arm_ids.append((arm, _draw(ids, by_name[arm.name].n, rng)))
    return _create_items(study, real, arm_ids)


def practice_draw(study: Study, plan: StudyPlan) -> list[PracticeItem]:
    """The study's practice patches, half real and half synthetic, from its practice pools (drawn before
    the test set, which then never holds them), stored as blinded bytes like the test items."""
    rng = np.random.default_rng([study.seed, 5])
    pools = list(study.practice_datasets.all())
    drawn = []
    for source, n in ((Source.REAL, plan.practice_real), (Source.SYNTHETIC, plan.practice_synthetic)):
        ids = list(pool_patches(pools, study.tissue_class, source).values_list("id", flat=True))
        drawn += [(pid, source) for pid in _draw(ids, n, rng)]
    shuffled = [drawn[i] for i in rng.permutation(len(drawn))]
    items = [PracticeItem(study=study, patch_id=pid, truth=truth) for pid, truth in shuffled]
    transforms = {item.patch_id: item_transform(study, item.token) for item in items}
    pngs = _blinded_pngs(transforms, study.harmonise_jpeg_quality, study.stain_target or None)
    for item in items:
        item.png = pngs[item.patch_id]
    return PracticeItem.objects.bulk_create(items)


def order_draw(items: dict[int, str], seed: int, stream: int = 2) -> list[str]:
    """The tokens of `items` (id -> token) in the order drawn from `seed` (a permutation of sorted ids)."""
    ordered = sorted(items)
    return [items[ordered[i]] for i in np.random.default_rng([seed, stream]).permutation(len(ordered))]


def reader_order(study: Study, items: dict[int, str], seed: int) -> list[str]:
    """A reader's order: their items shuffled by their seed, with the study's repeat reads added."""
    return repeat_order(
        order_draw(items, seed),
        repeats=repeat_count(len(items), study.repeat_share),
        gap=study.repeat_gap,
        washout=study.repeat_washout_days > 0,
        seed=seed,
    )
