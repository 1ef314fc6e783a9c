"""Is a training run going wrong? Checks on its losses and its fixed-noise samples. No Django.

Three warnings, each with the step it was first seen at (the rules are fixed here, and the run page
quotes them):
- collapse: after the first `WARMUP_SHARE` of a run, the fixed-noise samples of a class vary less
  than `COLLAPSE_SHARE` of what its real patches vary (the spread: the standard deviation across
  samples of each pixel, averaged over pixels, in [0, 1] units). A generator that makes one picture
  for every noise has a spread of 0.
- divergence: over the last `WINDOW` logged points the discriminator's mean loss is below `D_FLOOR`
  while the generator's is above `G_CEILING` and higher than over the window before (D wins outright
  and G is pushed ever further).
- not finite: a loss became NaN or infinite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

COLLAPSE_SHARE = 0.25
WARMUP_SHARE = 0.10
WINDOW = 10
D_FLOOR = 0.05
G_CEILING = 3.0
RULES = (
    f"Collapse: after the first {WARMUP_SHARE:.0%} of the steps, a class's fixed-noise samples vary less "
    f"than {COLLAPSE_SHARE:.0%} of what its real patches vary (per-pixel spread across samples). Divergence: "
    f"over the last {WINDOW} logged points D's mean loss is below {D_FLOOR} while G's is above {G_CEILING} "
    "and rising. Not finite: a loss became NaN or infinite."
)


@dataclass(frozen=True)
class HealthWarning:
    kind: str  # collapse, divergence, not finite
    step: int
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def spread(images: np.ndarray) -> float:
    """How much a set of [n, H, W, 3] uint8 images varies: the per-pixel standard deviation across the
    set, averaged over pixels and channels, in [0, 1] units (0: all the same picture)."""
    if len(images) < 2:
        return 0.0
    return float((images.astype(np.float32) / 255.0).std(axis=0).mean())


def real_spreads(
    images: np.ndarray, labels: np.ndarray, classes: Sequence[str], per_class: int = 64, seed: int = 0
) -> dict[str, float]:
    """The spread of each class's real patches (a random sample of at most `per_class`)."""
    rng = np.random.default_rng(seed)
    result = {}
    for index, name in enumerate(classes):
        members = np.flatnonzero(labels == index)
        chosen = np.sort(rng.choice(members, size=min(per_class, members.size), replace=False))
        result[name] = spread(np.asarray(images[chosen]))
    return result


def grid_spreads(grid: np.ndarray, classes: Sequence[str], size: int = 128) -> dict[str, float]:
    """The spread of each class's row of a fixed-noise grid ([C*size, k*size, 3], one row a class)."""
    k = grid.shape[1] // size
    result = {}
    for index, name in enumerate(classes):
        row = grid[index * size : (index + 1) * size].reshape(size, k, size, 3).transpose(1, 0, 2, 3)
        result[name] = spread(row)
    return result


def check_samples(
    *, step: int, steps: int, spreads: dict[str, float], reference: dict[str, float]
) -> list[HealthWarning]:
    if step < WARMUP_SHARE * steps:
        return []
    collapsed = [
        f"{name} {value:.3f} against {reference[name]:.3f} for its real patches"
        for name, value in spreads.items()
        if reference.get(name, 0.0) > 0 and value < COLLAPSE_SHARE * reference[name]
    ]
    if not collapsed:
        return []
    return [
        HealthWarning(
            "collapse",
            step,
            f"Mode collapse at step {step:,}: the fixed-noise samples barely vary ({'; '.join(collapsed)}). "
            "Patches from this checkpoint are likely near-copies of one picture.",
        )
    ]


def check_losses(history: Sequence[Sequence[float]]) -> list[HealthWarning]:
    """`history`: rows [step, loss_d_real, loss_d_fake, loss_g] in log order."""
    warnings = []
    bad = next((row for row in history if not all(_finite(v) for v in row[1:4])), None)
    if bad is not None:
        warnings.append(
            HealthWarning(
                "not finite",
                int(bad[0]),
                f"A loss became NaN or infinite at step {int(bad[0]):,}: training has broken down; "
                "checkpoints after it are not usable.",
            )
        )
    if len(history) >= 2 * WINDOW:
        last = np.asarray(history[-WINDOW:], dtype=float)
        before = np.asarray(history[-2 * WINDOW : -WINDOW], dtype=float)
        d_mean = float(last[:, 1:3].mean())
        g_mean, g_before = float(last[:, 3].mean()), float(before[:, 3].mean())
        if d_mean < D_FLOOR and g_mean > G_CEILING and g_mean > g_before:
            step = int(last[-1, 0])
            warnings.append(
                HealthWarning(
                    "divergence",
                    step,
                    f"The discriminator wins outright by step {step:,} (its mean loss {d_mean:.3f}) while "
                    f"the generator's loss climbs ({g_before:.2f} to {g_mean:.2f}): the generator gets no "
                    "useful signal and its samples stop improving.",
                )
            )
    return warnings


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def merge(known: list[dict[str, Any]], new: Sequence[HealthWarning]) -> list[dict[str, Any]]:
    """A run's warnings: the first time each kind was seen (its message), and the last step it was."""
    merged = {w["kind"]: dict(w) for w in known}
    for warning in new:
        if warning.kind in merged:
            merged[warning.kind]["last_step"] = max(merged[warning.kind].get("last_step", 0), warning.step)
        else:
            merged[warning.kind] = warning.as_dict() | {"last_step": warning.step}
    return sorted(merged.values(), key=lambda w: w["step"])
