"""The GPU check: the paper's network trained for a few hundred steps on the demo data, its patches
sampled and stored as a sampling run stores them, and the figures a reader of the README needs.

Everything runs through the project's own code: the training loop (`neural.loop.train`), sampling
(`neural.sampling.generate`, batched on CUDA), the common PNG pipeline and the configured storage (on a
worker, its object store). Nothing is written to the database; the stored check patches are removed.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage

from core.filecache import store_content_addressed, store_pool
from gan import imaging
from neural.config import TrainingConfig

if TYPE_CHECKING:
    import torch

    from neural.data import PackedPatches
    from neural.sampling import Reproducibility

DEMO_DATA = "demo/data"


@dataclass(frozen=True)
class GpuCheck:
    device: str
    device_name: str
    torch_version: str
    bf16: bool  # bf16 autocast in effect (the device has fast bf16)
    batch_size: int
    steps: int
    training_images: int
    training_images_per_second: float
    step_gflop: float
    achieved_tflops: float
    datasheet_bf16_tflops: float | None
    measured_bf16_tflops: float
    sampled: int
    generated_per_second: float
    stored_per_second: float
    storage: str
    reproducibility: Reproducibility

    def share_of(self, peak: float | None) -> float | None:
        return None if not peak else self.achieved_tflops / peak


def demo_pack(classes: tuple[str, ...]) -> PackedPatches:
    """The bundled demo patches of `classes` (from every demo folder) as a pack in memory."""
    from neural.benchmark import pack_from_arrays

    root = Path(settings.BASE_DIR) / DEMO_DATA
    images, labels = [], []
    for index, tissue_class in enumerate(classes):
        for path in sorted(root.glob(f"*/{tissue_class}/*.png")):
            images.append(imaging.decode_png_array(path.read_bytes()))
            labels.append(index)
    return pack_from_arrays(images, labels, classes)


def _store_all(images: np.ndarray, prefix: str) -> list[str]:
    """Encode and store images as a sampling run does (a pool of threads, content-addressed names)."""

    def store(pixels: np.ndarray) -> str:
        image = imaging.from_array(pixels)
        name = f"{prefix}/{imaging.content_hash(image)}.png"
        return store_content_addressed(name, lambda: imaging.encode_png(image))

    return list(store_pool().map(store, images))


def gpu_check(*, device: torch.device, steps: int, batch_size: int = 125, count: int) -> GpuCheck:
    import torch

    from neural.benchmark import (
        datasheet_bf16_tflops,
        device_name,
        measured_matmul_tflops,
        step_flops,
        training_speed,
    )
    from neural.runtime import fast_bf16
    from neural.sampling import generate, reproducibility

    config = TrainingConfig(batch_size=batch_size)
    data = demo_pack(config.classes)
    speed = training_speed(config, data, device, steps=steps)
    flops = step_flops(config, device)
    achieved = flops * speed.images_per_second / batch_size / 1e12
    name = device_name(device)

    lym = config.classes.index("LYM")
    seeds = list(range(count))
    for _ in generate(speed.generator, class_index=lym, seeds=seeds[:64], device=device):
        pass  # warm-up: the first batch holds kernel selection
    start = time.perf_counter()
    batches = [images for _, images in generate(speed.generator, class_index=lym, seeds=seeds, device=device)]
    generated_s = time.perf_counter() - start
    prefix = f"gpu-check/{uuid.uuid4().hex}"
    start = time.perf_counter()
    names: list[str] = []
    with ThreadPoolExecutor(max_workers=1) as overlap:  # stores a batch while the next is generated
        pending = None
        for _, images in generate(speed.generator, class_index=lym, seeds=seeds, device=device):
            if pending is not None:
                names += pending.result()
            pending = overlap.submit(_store_all, images, prefix)
        if pending is not None:
            names += pending.result()
    stored_s = time.perf_counter() - start
    for stored in set(names):
        default_storage.delete(stored)
    del batches
    return GpuCheck(
        device=str(device),
        device_name=name,
        torch_version=torch.__version__,
        bf16=config.precision == "bf16" and fast_bf16(device),
        batch_size=batch_size,
        steps=steps,
        training_images=speed.timed_steps * batch_size,
        training_images_per_second=speed.images_per_second,
        step_gflop=flops / 1e9,
        achieved_tflops=achieved,
        datasheet_bf16_tflops=datasheet_bf16_tflops(name) if device.type == "cuda" else None,
        measured_bf16_tflops=measured_matmul_tflops(device),
        sampled=count,
        generated_per_second=count / generated_s,
        stored_per_second=len(names) / stored_s,
        storage=default_storage.__class__.__name__,  # the configured class (a lazy object's wrapped one)
        reproducibility=reproducibility(
            speed.generator, class_index=lym, seeds=seeds[:64], device=device, batch_size=64
        ),
    )
