"""The training warnings: collapse of the fixed-noise samples, divergence, losses that break down."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neural import health
from neural.loop import Trainer
from tests.neural.conftest import tiny_config

DEMO = Path(__file__).resolve().parents[2] / "demo" / "data" / "CRC-VAL-HE-7K"


def _real(tissue_class: str, n: int = 8) -> np.ndarray:
    files = sorted((DEMO / tissue_class).glob("*.png"))[:n]
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files])


def _grid(rows: list[np.ndarray]) -> np.ndarray:
    """A fixed-noise grid as the trainer draws it: one row of k tiles a class."""
    return np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)


def test_a_collapsed_generator_is_flagged_and_real_patches_are_not() -> None:
    config = tiny_config(steps=100)
    trainer = Trainer(config, torch.device("cpu"))
    with torch.no_grad():  # every noise vector gives the same picture: the last layer ignores its input
        last = [
            m
            for m in trainer.generator.modules()
            if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
        ][-1]
        last.weight.zero_()
        assert last.bias is not None
        last.bias.copy_(torch.tensor([0.6, -0.2, 0.5]))
    real = {c: _real(c) for c in config.classes}
    reference = health.real_spreads(
        np.concatenate(list(real.values())), np.repeat(np.arange(len(real)), 8), config.classes
    )
    collapsed = health.grid_spreads(trainer.sample_grid(), config.classes)
    assert max(collapsed.values()) < 0.01 < min(reference.values())
    (warning,) = health.check_samples(step=50, steps=100, spreads=collapsed, reference=reference)
    assert warning.kind == "collapse" and warning.step == 50 and "LYM 0.000" in warning.message
    # The same check on a grid of real patches (what a perfect generator would draw) stays quiet.
    real_grid = health.grid_spreads(_grid([real[c][:4] for c in config.classes]), config.classes)
    assert health.check_samples(step=50, steps=100, spreads=real_grid, reference=reference) == []
    # Every run starts from near-flat output: the first 10% of the steps are not judged.
    assert health.check_samples(step=9, steps=100, spreads=collapsed, reference=reference) == []


def test_divergence_needs_d_winning_and_g_climbing() -> None:
    healthy = [[10 * i, 0.6, 0.6, 1.2] for i in range(40)]
    assert health.check_losses(healthy) == []
    diverging = [[10 * i, 0.01, 0.02, 3.0 + 0.1 * i] for i in range(40)]
    (warning,) = health.check_losses(diverging)
    assert warning.kind == "divergence" and warning.step == 390
    d_wins_g_steady = [[10 * i, 0.01, 0.02, 4.0] for i in range(40)]
    assert health.check_losses(d_wins_g_steady) == []  # G is not climbing: no claim of divergence


def test_a_loss_that_breaks_down_is_flagged_at_its_step() -> None:
    history = [[10, 0.7, 0.7, 0.7], [20, 0.7, None, 0.7], [30, float("nan"), 0.7, 0.7]]
    (warning,) = health.check_losses(history)
    assert warning.kind == "not finite" and warning.step == 20


def test_merge_keeps_the_first_sighting_and_the_last_step() -> None:
    first = health.HealthWarning("collapse", 50, "first")
    merged = health.merge([], [first])
    merged = health.merge(merged, [health.HealthWarning("collapse", 80, "again")])
    assert merged == [{"kind": "collapse", "step": 50, "message": "first", "last_step": 80}]
