"""The shortcut check on real patches: colour-shifted 'synthetic' ones are caught, a split of one pool
is not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from analysis import shortcuts
from tests.demo_patches import demo_pool


@pytest.fixture(scope="module")
def pool() -> np.ndarray:
    return demo_pool(0)


def test_two_halves_of_one_real_pool_show_no_shortcut(pool: np.ndarray) -> None:
    half = len(pool) // 2
    result = shortcuts.shortcut_check(pool[:half], pool[half : 2 * half])
    assert result.auc is not None and result.auc.low < 0.5 < result.auc.high
    assert abs(result.auc.value - 0.5) < 0.15 and result.warning == ""


def test_colour_shifted_synthetic_patches_are_caught_by_colour(pool: np.ndarray) -> None:
    half = len(pool) // 2
    shifted = np.clip(pool[half : 2 * half].astype(int) + np.array([14, -6, 10]), 0, 255).astype(np.uint8)
    result = shortcuts.shortcut_check(pool[:half], shifted)
    assert result.auc is not None and result.auc.value > 0.85 and result.auc.low > 0.5
    assert result.strongest in {"colour (RGB)", "colour (HSV)", "stain (HED)"}
    assert "Low-level features alone tell" in result.warning and str(result.strongest) in result.warning


def test_jpeg_traces_are_caught_by_the_traces_family(pool: np.ndarray) -> None:
    half = len(pool) // 2

    def jpeg(image: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=40)
        return np.asarray(Image.open(buffer).convert("RGB"))

    compressed = np.stack([jpeg(i) for i in pool[half : 2 * half]])
    result = shortcuts.shortcut_check(pool[:half], compressed)
    assert result.families["JPEG/resampling traces"].value > 0.8


def test_too_few_patches_give_a_reason() -> None:
    result = shortcuts.shortcut_check(np.zeros((3, 16, 16, 3), np.uint8), np.zeros((3, 16, 16, 3), np.uint8))
    assert result.auc is None and "at least 5 real and 5 synthetic" in result.reason


def test_one_family_near_certain_is_severe_though_all_together_score_lower() -> None:
    """A small pool: the joint model (many features, few patches) at 0.92 while one family alone reaches
    1.00 is still a near-certain shortcut, and asks the manager to confirm."""
    joint, certain = shortcuts.AUC(0.92, 0.79, 1.0), shortcuts.AUC(1.0, 1.0, 1.0)
    mild = shortcuts.AUC(0.85, 0.7, 0.96)
    result = shortcuts.ShortcutResult(13, 24, joint, {"colour (RGB)": mild, "power spectrum": certain})
    assert result.severe
    assert not shortcuts.ShortcutResult(13, 24, joint, {"colour (RGB)": mild}).severe
    chance = shortcuts.AUC(0.97, 0.45, 1.0)  # high, but its interval reaches below 0.5
    assert not shortcuts.ShortcutResult(5, 5, mild, {"power spectrum": chance}).severe
