"""Where PyTorch work runs, decided in one place for every job (training, sampling, FID, the tissue
classifier, augmentation experiments): the device, the precision, determinism, the label-preserving
augmentation, and what a run records about its machine. Pure: no Django.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from gan.training.config import AUGMENTATIONS, PRECISIONS  # the names a config may use

__all__ = ["AUGMENTATIONS", "PRECISIONS", "augment", "autocast", "determinism", "environment", "pick_device"]


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA when present (or asked for), else the CPU. Every job passes its own `device` parameter."""
    if preference == "cpu":
        return torch.device("cpu")
    if preference.startswith("cuda") or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("CUDA was asked for but no CUDA device is available")
        return torch.device(preference if preference.startswith("cuda") else "cuda")
    return torch.device("cpu")


def fast_bf16(device: torch.device) -> bool:
    """Whether the device has bf16 matrix units: CUDA with bf16 support, or a CPU with AMX or AVX-512 BF16
    (the oneDNN kernels autocast uses on CPU are fast only there; elsewhere bf16 is emulated and slower)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
    return False


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast where the device has fast bf16 and the run asked for it; fp32 otherwise."""
    if precision == "bf16" and fast_bf16(device):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def determinism(deterministic: bool, device: torch.device) -> Iterator[None]:
    """Deterministic algorithms (and no cuDNN autotuning) for the block, as asked; both restored after."""
    previous = torch.are_deterministic_algorithms_enabled()
    previous_benchmark = torch.backends.cudnn.benchmark
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
    torch.use_deterministic_algorithms(deterministic)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.backends.cudnn.benchmark = previous_benchmark


def augment(images: torch.Tensor, names: Sequence[str], generator: torch.Generator) -> torch.Tensor:
    """Each named augmentation applied to a random half of the batch [B, 3, H, W], drawn from `generator`."""
    operations = {
        "hflip": lambda x: x.flip(3),
        "vflip": lambda x: x.flip(2),
        "rot90": lambda x: x.rot90(1, (2, 3)),
    }
    for name in names:
        mask = (torch.rand(images.shape[0], generator=generator) < 0.5).to(images.device)[:, None, None, None]
        images = torch.where(mask, operations[name](images), images)
    return images


def environment(device: torch.device) -> dict[str, Any]:
    """What a run records about where it ran."""
    info: dict[str, Any] = {
        "device": str(device),
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "bf16": fast_bf16(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["cpu_threads"] = torch.get_num_threads()
    return info
