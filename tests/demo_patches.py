"""The bundled demo patches as arrays, for tests that need real tissue without Django."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

DEMO = Path(__file__).resolve().parents[1] / "demo" / "data"


def demo_pool(seed: int) -> np.ndarray:
    """Every demo patch but BACK, [N, 128, 128, 3] uint8, in an order shuffled by `seed`."""
    files = sorted(p for p in DEMO.rglob("*.png") if p.parent.name != "BACK")
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files])
    return images[np.random.default_rng(seed).permutation(len(images))]
