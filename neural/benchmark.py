"""What one GPU (or CPU) does with the paper's network: training images per second through the project's
own loop, the work of a step, and its share of the device's bf16 peak. No Django here.

The peak is the maker's datasheet figure for dense bf16 tensor work where the device is known (no
sparsity), and in every case a measured bf16 matrix product, so that a share can be read against both.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from neural.config import TrainingConfig
from neural.data import PackedPatches
from neural.loop import Progress, Trainer, train

# Dense bf16 tensor TFLOP/s from the makers' datasheets (without sparsity), by a part of the device name.
# Longer names first: "H100 PCIe" before "H100".
DATASHEET_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("GH200", 989.4),
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),
    ("H800", 989.4),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.1),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("A10", 125.0),
    ("A30", 165.0),
    ("RTX 6000 Ada", 364.2),
    ("A6000", 154.8),
    ("RTX 4090", 165.2),
    ("RTX 3090", 71.0),
)


def datasheet_bf16_tflops(device_name: str) -> float | None:
    for part, tflops in DATASHEET_BF16_TFLOPS:
        if part.lower() in device_name.lower():
            return tflops
    return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return f"CPU, {torch.get_num_threads()} threads"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measured_matmul_tflops(device: torch.device, dtype: torch.dtype = torch.bfloat16) -> float:
    """The TFLOP/s of a large square matrix product in `dtype` on `device` (the best of a few)."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        _sync(device)
        best = min(best, (time.perf_counter() - start) / 4)
    return 2 * n**3 / best / 1e12


def step_flops(config: TrainingConfig, device: torch.device) -> float:
    """The floating-point operations of one training step at the config's batch size, counted by
    PyTorch's FlopCounterMode on a step of 2 images (the work is proportional to the batch)."""
    small = config.replace(batch_size=2, compile=False)
    trainer = Trainer(small, device)
    size = 128
    real = torch.rand(2, 3, size, size, device=device) * 2 - 1
    labels = torch.zeros(2, dtype=torch.long, device=device)
    with FlopCounterMode(display=False) as counter:
        trainer.step(real, labels, 0)
    return float(counter.get_total_flops()) * config.batch_size / 2


@dataclass(frozen=True)
class TrainingSpeed:
    steps: int
    batch_size: int
    images_per_second: float  # over the intervals after the first (which holds the warm-up), if any
    timed_steps: int
    seconds: float  # the whole run, warm-up, final sample grid and checkpoint included
    generator: torch.nn.Module  # the trained generator, loaded back from the checkpoint the loop wrote


def training_speed(
    config: TrainingConfig, data: PackedPatches, device: torch.device, *, steps: int
) -> TrainingSpeed:
    """Train `config` for `steps` steps on `data` through the project's own loop (`neural.loop.train`:
    its batches, augmentation, precision and logging) and read its images per second.

    The loop reports every `log_every` steps with the rate of that interval; the first interval holds
    cuDNN's and the allocator's warm-up and is left out where there is more than one."""
    from neural.sampling import load_generator

    config = config.replace(
        steps=steps,
        log_every=max(1, steps // 10),
        checkpoint_every=steps,
        sample_every=steps,
        grid_per_class=1,
    )
    reports: list[Progress] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="histoturing-speed-") as folder:
        result = train(
            config=config, data=data, device=device, checkpoint_dir=Path(folder), progress_fn=reports.append
        )
        total = time.perf_counter() - start
        assert result.checkpoint is not None
        generator, _, _ = load_generator(result.checkpoint, device)
    ends = [0, *(r.step for r in reports)]
    intervals = [(end - begin, r) for begin, end, r in zip(ends, ends[1:], reports, strict=False)]
    timed = intervals[1:] or intervals
    images = sum(n for n, _ in timed) * config.batch_size
    seconds = sum(n * config.batch_size / r.images_per_second for n, r in timed if r.images_per_second > 0)
    return TrainingSpeed(
        steps=steps,
        batch_size=config.batch_size,
        images_per_second=images / seconds if seconds > 0 else 0.0,
        timed_steps=sum(n for n, _ in timed),
        seconds=total,
        generator=generator,
    )


def pack_from_arrays(images: list[np.ndarray], labels: list[int], classes: tuple[str, ...]) -> PackedPatches:
    return PackedPatches.from_arrays(np.stack(images), np.asarray(labels, dtype=np.int64), classes)
