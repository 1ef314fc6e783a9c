"""Patches packed once into a uint8 array, memory-mapped, so that the loop never decodes an image.

No Django here. A pack is two .npy files side by side: `<name>.images.npy` ([N, 128, 128, 3] uint8,
NHWC) and `<name>.labels.npy` ([N] int64 class indices in the config's class order).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

SIZE = 128


class DataError(ValueError):
    """Training data that cannot be used; the message says why."""


@dataclass(frozen=True)
class PackedPatches:
    images: np.ndarray  # [N, 128, 128, 3] uint8, memory-mapped
    labels: np.ndarray  # [N] int64
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(counts[i]) for i, name in enumerate(self.classes)}

    def require_every_class(self) -> None:
        missing = [name for name, count in self.class_counts().items() if count == 0]
        if missing:
            raise DataError(f"the dataset has no patches of class(es) {', '.join(missing)}")

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> PackedPatches:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (SIZE, SIZE, 3):
            raise DataError(f"images must be uint8 [N, 128, 128, 3], got {images.dtype} {images.shape}")
        if labels.shape != (images.shape[0],):
            raise DataError("one label per image is needed")
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DataError("labels must index the class list")
        return cls(images, labels.astype(np.int64, copy=False), tuple(classes))


def pack_patches(
    items: Iterable[tuple[np.ndarray, int]], *, count: int, classes: tuple[str, ...], path: Path
) -> PackedPatches:
    """Write `count` (image, label) pairs to `path` atomically and open the result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_images = path.with_name(path.name + ".images.tmp.npy")
    images = np.lib.format.open_memmap(tmp_images, mode="w+", dtype=np.uint8, shape=(count, SIZE, SIZE, 3))
    labels = np.empty(count, dtype=np.int64)
    written = 0
    for index, (pixels, label) in enumerate(items):
        if index >= count:
            raise DataError(f"more than the {count} announced patches")
        images[index] = pixels
        labels[index] = label
        written += 1
    if written != count:
        raise DataError(f"expected {count} patches, got {written}")
    images.flush()
    del images
    np.save(path.with_name(path.name + ".labels.npy"), labels)
    os.replace(tmp_images, path.with_name(path.name + ".images.npy"))
    path.with_name(path.name + ".json").write_text(json.dumps({"classes": list(classes), "count": count}))
    return open_pack(path)


def pack_exists(path: Path) -> bool:
    return all(
        path.with_name(path.name + suffix).exists() for suffix in (".images.npy", ".labels.npy", ".json")
    )


def open_pack(path: Path) -> PackedPatches:
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    images = np.load(path.with_name(path.name + ".images.npy"), mmap_mode="r")
    labels = np.load(path.with_name(path.name + ".labels.npy"))
    return PackedPatches.from_arrays(images, labels, tuple(meta["classes"]))


def batch_indices(*, seed: int, step: int, batch_size: int, n: int) -> tuple[np.ndarray, int]:
    """The dataset indices of a step's batch, and its epoch: a pure function of (seed, step).

    Batches are consecutive slices of an endless stream of per-epoch permutations, each drawn from
    (seed, epoch). A resumed run therefore sees exactly the batches an uninterrupted one would,
    without carrying sampler state.
    """
    start = step * batch_size
    out = np.empty(batch_size, dtype=np.int64)
    filled = 0
    epoch = start // n
    while filled < batch_size:
        e, offset = divmod(start + filled, n)
        perm = _permutation(seed, e, n)
        take = min(batch_size - filled, n - offset)
        out[filled : filled + take] = perm[offset : offset + take]
        filled += take
    return out, epoch


_PERM_CACHE: dict[tuple[int, int, int], np.ndarray] = {}


def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    key = (seed, epoch, n)
    perm = _PERM_CACHE.get(key)
    if perm is None:
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        _PERM_CACHE.clear()  # keep one epoch (two across a boundary is recomputed cheaply)
        _PERM_CACHE[key] = perm
    return perm


def load_batch(
    data: PackedPatches, indices: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch as float images in [-1, 1] ([B, 3, 128, 128], channels_last memory) and labels [B]."""
    import torch  # here, not at the top: packing data (in web processes too) needs no PyTorch

    order = np.sort(indices)  # sorted reads are sequential on the memory map
    pixels = torch.from_numpy(np.ascontiguousarray(data.images[order]))  # [B, 128, 128, 3] uint8
    labels = torch.from_numpy(data.labels[order])
    if device.type == "cuda":
        pixels, labels = pixels.pin_memory(), labels.pin_memory()
    pixels = pixels.to(device, non_blocking=True)
    labels = labels.to(device, non_blocking=True)
    # NHWC memory seen as NCHW is channels_last already: no copy.
    images = pixels.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)  # [B, 3, 128, 128]
    return images, labels
