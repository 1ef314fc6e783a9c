"""Sampling: every image reproducible from (checkpoint, class, its own seed). No Django here.

An image's latent vector is drawn on the CPU from a generator seeded by the image's own seed, so it
does not depend on the device, the batch it is generated in, or the images before it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch

from neural.checkpoint import CheckpointError, load_checkpoint
from neural.config import TrainingConfig


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Generator output [N, 3, H, W] in [-1, 1] to [N, H, W, 3] uint8, rounded (never truncated)."""
    scaled = (images.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5
    return scaled.round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


def latents_for_seeds(seeds: Sequence[int], shape: tuple[int, ...]) -> torch.Tensor:
    """[N, *shape] (a vector, or the texture generator's noise map): row i drawn from a generator seeded
    with seeds[i]."""
    rows = [torch.randn(shape, generator=torch.Generator().manual_seed(int(seed))) for seed in seeds]
    return torch.stack(rows) if rows else torch.empty(0, *shape)


def load_generator(path: Path, device: torch.device) -> tuple[torch.nn.Module, TrainingConfig, int]:
    """A checkpoint's generator (whichever architecture its config names; its averaged weights where the
    run kept them, `g_ema`), in eval mode."""
    from neural.model import build_generator

    checkpoint = load_checkpoint(path, map_location=device)
    generator = build_generator(checkpoint.config)
    try:
        generator.load_state_dict(checkpoint.state.get("generator_ema", checkpoint.state["generator"]))
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path.name} does not fit the generator: {exc}") from None
    return generator.to(device).eval(), checkpoint.config, checkpoint.step


# On CUDA a batch goes through the generator at once, with deterministic kernels and no TF32: a batch
# then gives the same bytes every time, and an image differs from the same seed generated alone by at most
# this many grey levels (kernels are chosen by batch size and round differently). `scripts/gpu-check`
# measures the difference on the GPU at hand.
BATCH_TOLERANCE = 1


@contextlib.contextmanager
def _exact_cuda() -> Iterator[None]:
    """Deterministic cuDNN kernels in full fp32 (no TF32, no autotuning) for the block; restored after."""
    cudnn = torch.backends.cudnn
    previous = (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32 = True, False, False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = (
            previous
        )


@torch.no_grad()
def generate(
    generator: torch.nn.Module,
    *,
    class_index: int,
    seeds: Sequence[int],
    device: torch.device,
    batch_size: int = 64,
    batched: bool | None = None,
) -> Iterator[tuple[list[int], np.ndarray]]:
    """Yield (seeds, images [n, 128, 128, 3] uint8) `batch_size` at a time, in fp32 for reproducibility.

    `batched` (default: on CUDA only): the chunk goes through the generator in one call, within
    BATCH_TOLERANCE of each image alone. Otherwise each image goes through on its own (a batch of one),
    so that it is bitwise the image of its seed whatever else is generated: on a CPU this is also faster
    (measured: 0.23 s against 0.76 s for 64 demo images), on a GPU it would leave the device idle."""
    shape = cast(tuple[int, ...], generator.latent_shape)  # a vector, or the texture generator's noise map
    batched = device.type == "cuda" if batched is None else batched
    with _exact_cuda() if device.type == "cuda" else contextlib.nullcontext():
        for start in range(0, len(seeds), batch_size):
            chunk = [int(s) for s in seeds[start : start + batch_size]]
            z = latents_for_seeds(chunk, shape).to(device)  # [n, *latent shape]
            if batched:
                labels = torch.full((len(chunk),), class_index, dtype=torch.long, device=device)
                yield chunk, to_uint8(generator(z, labels))
            else:
                label = torch.full((1,), class_index, dtype=torch.long, device=device)
                yield chunk, to_uint8(torch.cat([generator(z[i : i + 1], label) for i in range(len(chunk))]))


@dataclass(frozen=True)
class Reproducibility:
    """How far sampling strays from "each image depends only on its seed" on one device."""

    images: int
    batched: bool
    max_difference_to_alone: int  # grey levels, each image generated in its batch against alone
    differing_pixels: float  # the share of pixel values that differ at all
    repeatable: bool  # the same seeds generated twice give the same bytes

    @property
    def within_tolerance(self) -> bool:
        return self.repeatable and self.max_difference_to_alone <= BATCH_TOLERANCE


def reproducibility(
    generator: torch.nn.Module,
    *,
    class_index: int,
    seeds: Sequence[int],
    device: torch.device,
    batch_size: int = 64,
    batched: bool | None = None,
) -> Reproducibility:
    """Generate `seeds` as sampling does on `device` (twice), and each one alone, and compare."""
    batched = device.type == "cuda" if batched is None else batched

    def run(size: int) -> np.ndarray:
        return generate_all(
            generator, class_index=class_index, seeds=seeds, device=device, batch_size=size, batched=batched
        )

    first, again, alone = run(batch_size), run(batch_size), run(1)
    difference = np.abs(first.astype(np.int16) - alone.astype(np.int16))
    return Reproducibility(
        images=len(seeds),
        batched=batched,
        max_difference_to_alone=int(difference.max()) if difference.size else 0,
        differing_pixels=float((difference > 0).mean()) if difference.size else 0.0,
        repeatable=bool(np.array_equal(first, again)),
    )


def generate_all(
    generator: torch.nn.Module,
    *,
    class_index: int,
    seeds: Sequence[int],
    device: torch.device,
    batch_size: int = 64,
    batched: bool | None = None,
) -> np.ndarray:
    """The images of `generate` in one array [N, 128, 128, 3] uint8, for a few hundred images at most."""
    batches = [
        images
        for _, images in generate(
            generator,
            class_index=class_index,
            seeds=seeds,
            device=device,
            batch_size=batch_size,
            batched=batched,
        )
    ]
    return np.concatenate(batches) if batches else np.empty((0, 128, 128, 3), np.uint8)
