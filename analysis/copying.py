"""The copying check: is a synthetic patch (nearly) one of the generator's training patches? No Django.

For every synthetic patch, the nearest training patch in a feature space (the pixels of a small
downsample, and the tissue classifier's features when there is one), by Euclidean distance computed as
batched matrix products. The baseline is the same distance from real patches to their nearest *other*
training patch. The rule, fixed here: a synthetic patch is a near-copy when it is closer to a training
patch than `PERCENTILE` % of real patches are to theirs (the baseline's `PERCENTILE`th percentile); a
generator that only makes new tissue has about `PERCENTILE` % of its patches below that line by chance.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

PERCENTILE = 1.0
SIDE = 16  # the pixel space: each patch averaged down to SIDE x SIDE x 3
RULE = (
    "A synthetic patch is flagged as a near-copy when its distance to the nearest training patch is below "
    f"the {PERCENTILE:g}st percentile of the real training patches' distances to their nearest other "
    f"training patch (so about {PERCENTILE:g}% of patches of a generator that copies nothing fall below "
    "it by chance)."
)


def pixel_features(images: np.ndarray, side: int = SIDE) -> np.ndarray:
    """[N, H, W, 3] uint8 -> [N, side*side*3] float32: block means (H, W multiples of `side`), in [0, 1]."""
    n, h, w, c = images.shape
    if h % side or w % side:
        raise ValueError(f"patches of {h}x{w} px cannot be averaged down to {side}x{side}")
    blocks = images.reshape(n, side, h // side, side, w // side, c)
    sums = blocks.sum(axis=(2, 4), dtype=np.uint32)  # integer sums: no float copy of every pixel
    return (sums.astype(np.float32) / (255.0 * (h // side) * (w // side))).reshape(n, side * side * c)


def nearest(
    queries: np.ndarray, references: np.ndarray, *, exclude_self: bool = False, batch: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's nearest reference: (distances [M], indices [M]). ||q - r||^2 = |q|^2 + |r|^2 - 2 q.r,
    one [batch, N] matrix product at a time (memory: batch x N floats). `exclude_self`: the queries are
    the references' first M rows, and a row may not be its own nearest."""
    refs = np.ascontiguousarray(references, dtype=np.float32)
    ref_norms = (refs * refs).sum(axis=1)
    distances = np.empty(len(queries), dtype=np.float32)
    indices = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), batch):
        q = np.ascontiguousarray(queries[start : start + batch], dtype=np.float32)
        squared = (q * q).sum(axis=1)[:, None] + ref_norms[None, :] - 2.0 * (q @ refs.T)
        if exclude_self:
            rows = np.arange(len(q))
            squared[rows, start + rows] = np.inf
        best = squared.argmin(axis=1)
        indices[start : start + len(q)] = best
        distances[start : start + len(q)] = np.sqrt(np.maximum(squared[np.arange(len(q)), best], 0.0))
    return distances, indices


@dataclass
class SpaceResult:
    """The check in one feature space."""

    space: str
    threshold: float
    synthetic_quantiles: dict[str, float]  # of the synthetic-to-training nearest distances
    baseline_quantiles: dict[str, float]  # of the real-to-other-real nearest distances
    n_flagged: int
    n_synthetic: int
    flagged: list[dict[str, Any]] = field(
        default_factory=list
    )  # {synthetic, nearest, distance}, closest first
    nearest: list[dict[str, Any]] = field(
        default_factory=list
    )  # every synthetic patch's nearest, closest first
    synthetic_distances: list[float] = field(default_factory=list)
    baseline_distances: list[float] = field(default_factory=list)

    @property
    def share_flagged(self) -> float:
        return self.n_flagged / self.n_synthetic if self.n_synthetic else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"share_flagged": self.share_flagged}


def _quantiles(values: np.ndarray) -> dict[str, float]:
    return {f"q{q:g}": float(np.percentile(values, q)) for q in (1, 5, 25, 50, 75, 95)}


def check_space(
    space: str,
    synthetic: np.ndarray,
    training: np.ndarray,
    *,
    synthetic_ids: list[Any],
    training_ids: list[Any],
    baseline_size: int = 1000,
    seed: int = 0,
) -> SpaceResult:
    """`synthetic` [M, D] and `training` [N, D] features; ids name the rows in the result."""
    if len(training) < 2 or not len(synthetic):
        raise ValueError("the copying check needs synthetic patches and at least two training patches")
    distances, indices = nearest(synthetic, training)
    rng = np.random.default_rng(seed)
    sample = rng.permutation(len(training))[: min(baseline_size, len(training))]
    ordered = np.concatenate([training[sample], np.delete(training, sample, axis=0)])
    baseline, _ = nearest(training[sample], ordered, exclude_self=True)
    threshold = float(np.percentile(baseline, PERCENTILE))
    order = np.argsort(distances)
    pairs = [
        {
            "synthetic": synthetic_ids[i],
            "nearest": training_ids[int(indices[i])],
            "distance": float(distances[i]),
        }
        for i in order
    ]
    flagged = [p for p in pairs if p["distance"] < threshold]
    return SpaceResult(
        space,
        threshold,
        _quantiles(distances),
        _quantiles(baseline),
        len(flagged),
        len(synthetic),
        flagged,
        pairs,
        [float(d) for d in distances],
        [float(d) for d in baseline],
    )


def chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))
