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
import torch.nn.functional as F

from neural.config import AUGMENTATIONS, PRECISIONS  # the names a config may use

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


def diff_augment(images: torch.Tensor, names: Sequence[str], generator: torch.Generator) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020): differentiable changes applied to every image D sees, real and
    generated alike, so that D cannot memorise a small training set and G still gets gradients through
    them. "color": random brightness, saturation and contrast; "translation": a shift of up to 1/8 of the
    side, zero-padded; "cutout": a zeroed square of half the side. Parameters come from `generator`."""
    n, _, h, w = images.shape
    device, dtype = images.device, images.dtype

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(device=device, dtype=dtype)

    for name in names:
        if name == "color":
            images = images + (uniform(n, 1, 1, 1) - 0.5)
            mean = images.mean(dim=1, keepdim=True)
            images = (images - mean) * (uniform(n, 1, 1, 1) * 2) + mean
            mean = images.mean(dim=(1, 2, 3), keepdim=True)
            images = (images - mean) * (uniform(n, 1, 1, 1) + 0.5) + mean
        elif name == "translation":
            shift = torch.randint(-(h // 8), h // 8 + 1, (n, 2), generator=generator)
            padded = F.pad(images, (w // 8, w // 8, h // 8, h // 8))
            rows = (torch.arange(h)[None, :] + h // 8 - shift[:, :1]).to(device)  # [N, H]
            cols = (torch.arange(w)[None, :] + w // 8 - shift[:, 1:]).to(device)  # [N, W]
            batch = torch.arange(n, device=device)[:, None, None]
            images = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        elif name == "cutout":
            size = h // 2
            corner = torch.randint(0, h - size + 1, (n, 2), generator=generator).to(device)
            ys = torch.arange(h, device=device)[None, :, None]
            xs = torch.arange(w, device=device)[None, None, :]
            inside = (
                (ys >= corner[:, :1, None])
                & (ys < corner[:, :1, None] + size)
                & (xs >= corner[:, 1:, None])
                & (xs < corner[:, 1:, None] + size)
            )  # [N, H, W]
            images = images * (~inside)[:, None].to(dtype)
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
