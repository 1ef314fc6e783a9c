"""The training loop: one function taking a config, data, a device and callbacks. No Django here.

Every random draw of step s (the batch, the latent vectors, the fake labels, augmentations) comes from
generators seeded by (config.seed, s), so a run resumed from a checkpoint at step s continues exactly
as an uninterrupted run would; on CPU with `deterministic=True` the two end bitwise equal.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neural.checkpoint import CheckpointError, load_checkpoint, require_compatible, save_checkpoint
from neural.config import TrainingConfig
from neural.data import PackedPatches, batch_indices, load_batch
from neural.model import build_models, latent_shape
from neural.runtime import augment, autocast, determinism, diff_augment, environment
from neural.sampling import to_uint8

_MIX = 0x9E3779B97F4A7C15


def step_seed(seed: int, step: int, stream: int) -> int:
    """A 63-bit seed for one random stream of one step."""
    return (seed * _MIX + step * 1_000_003 + stream * 7_919) % (2**63 - 1)


@dataclass(frozen=True)
class Progress:
    step: int
    steps: int
    epoch: int
    loss_d_real: float
    loss_d_fake: float
    loss_g: float
    images_per_second: float
    seconds_left: float | None


@dataclass(frozen=True)
class TrainResult:
    step: int
    status: Literal["finished", "cancelled"]
    checkpoint: Path | None


ProgressFn = Callable[[Progress], None]
AbortFn = Callable[[], bool]
SampleFn = Callable[[int, np.ndarray], None]  # (step, grid [C*128, k*128, 3] uint8)
CheckpointFn = Callable[[int, Path], None]


class Trainer:
    """The networks, their optimizers and one training step."""

    def __init__(self, config: TrainingConfig, device: torch.device) -> None:
        self.config = config
        self.device = device
        torch.manual_seed(config.seed)  # initial weights come from the run's seed
        generator, discriminator = build_models(config)
        memory = torch.channels_last if config.channels_last else torch.contiguous_format
        self.generator: nn.Module = generator.to(device).to(memory_format=memory)
        self.discriminator: nn.Module = discriminator.to(device).to(memory_format=memory)
        self.opt_g = torch.optim.Adam(
            self.generator.parameters(), lr=config.lr_g, betas=(config.beta1, config.beta2)
        )
        self.opt_d = torch.optim.Adam(
            self.discriminator.parameters(), lr=config.lr_d, betas=(config.beta1, config.beta2)
        )
        # The averaged generator samples are drawn from (`g_ema`); G itself where there is none.
        self.generator_ema: nn.Module | None = (
            copy.deepcopy(self.generator).eval().requires_grad_(False) if config.g_ema else None
        )
        self._g: nn.Module = self.generator
        self._d: nn.Module = self.discriminator
        if config.compile and device.type == "cuda":
            self._g = torch.compile(self.generator)  # type: ignore[assignment]
            self._d = torch.compile(self.discriminator)  # type: ignore[assignment]
        self.real_target = 1.0 - config.label_smoothing

    def random_inputs(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
        """The step's latent vectors [B, *latent] and fake labels [B], drawn on the CPU, then moved."""
        rng = torch.Generator().manual_seed(step_seed(self.config.seed, step, 1))
        shape = latent_shape(self.config, self.config.train_crop or None)
        z = torch.randn(self.config.batch_size, *shape, generator=rng)
        labels = torch.randint(self.config.num_classes, (self.config.batch_size,), generator=rng)
        return z.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True), rng

    def augment(self, images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        return augment(images, self.config.augmentations, rng)  # [B, 3, H, W]

    def crop(self, images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """A random `train_crop` square of each real patch (the texture architecture's training input)."""
        side = self.config.train_crop
        corners = torch.randint(images.shape[-1] - side + 1, (images.shape[0], 2), generator=rng).tolist()
        return torch.stack(
            [image[:, t : t + side, s : s + side] for image, (t, s) in zip(images, corners, strict=True)]
        )

    def d_losses(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's loss on real and on generated images: the paper's BCE (with its label smoothing), or hinge."""
        if self.config.loss == "hinge":
            return F.relu(1.0 - d_real).mean(), F.relu(1.0 + d_fake).mean()
        real = F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, self.real_target))
        return real, F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))

    def g_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "hinge":
            return -d_fake.mean()
        return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))

    def step(self, real: torch.Tensor, real_labels: torch.Tensor, step: int) -> torch.Tensor:
        """One D update and one G update; returns [loss_d_real, loss_d_fake, loss_g] (on the device)."""
        config = self.config
        z, fake_labels, rng = self.random_inputs(step)
        if config.train_crop:
            real = self.crop(real, rng)
        if config.augmentations:
            real = self.augment(real, rng)
        if config.d_dropout > 0:
            torch.manual_seed(step_seed(config.seed, step, 2))  # dropout masks
        seen = (lambda x: diff_augment(x, config.diffaugment, rng)) if config.diffaugment else (lambda x: x)
        with autocast(config.precision, self.device):
            fake = self._g(z, fake_labels)  # [B, 3, side, side]
            d_real = self._d(seen(real), real_labels)  # [B] (a patch D: [B, side/8, side/8])
            d_fake = self._d(seen(fake.detach()), fake_labels)
            loss_d_real, loss_d_fake = self.d_losses(d_real, d_fake)
        self.opt_d.zero_grad(set_to_none=True)
        (loss_d_real + loss_d_fake).backward()
        self.opt_d.step()

        # G update through the same fake batch; D's weights need no gradient here.
        self.discriminator.requires_grad_(False)
        with autocast(config.precision, self.device):
            loss_g = self.g_loss(self._d(seen(fake), fake_labels))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.discriminator.requires_grad_(True)
        if self.generator_ema is not None:
            self.update_ema()
        return torch.stack([loss_d_real.detach(), loss_d_fake.detach(), loss_g.detach()]).float()

    @torch.no_grad()
    def update_ema(self) -> None:
        """The averaged weights move towards G's by (1 - decay); buffers (batch norm's statistics) are G's."""
        assert self.generator_ema is not None
        averaged: list[torch.Tensor] = list(self.generator_ema.parameters())
        current: list[torch.Tensor] = list(self.generator.parameters())
        torch._foreach_lerp_(averaged, current, 1.0 - self.config.g_ema)
        for mine, theirs in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            mine.copy_(theirs)

    def sampler(self) -> nn.Module:
        return self.generator_ema if self.generator_ema is not None else self.generator

    def state(self, step: int) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "scheme": "per-step seeds from (seed, step)"}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "step": step,
            "config": self.config.to_dict(),
            "generator": self.generator.state_dict(),
            **({"generator_ema": self.generator_ema.state_dict()} if self.generator_ema is not None else {}),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": rng,
            "environment": environment(self.device),
        }

    def load(self, path: Path) -> int:
        checkpoint = load_checkpoint(path, map_location=self.device)
        require_compatible(checkpoint, self.config)
        try:
            self.generator.load_state_dict(checkpoint.state["generator"])
            if self.generator_ema is not None:
                self.generator_ema.load_state_dict(checkpoint.state["generator_ema"])
            self.discriminator.load_state_dict(checkpoint.state["discriminator"])
            self.opt_g.load_state_dict(checkpoint.state["opt_g"])
            self.opt_d.load_state_dict(checkpoint.state["opt_d"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path.name} does not fit this model: {exc}") from None
        rng = checkpoint.state.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"].cpu())
        return checkpoint.step

    @torch.no_grad()
    def sample_grid(self) -> np.ndarray:
        """A grid from fixed noise, one row per class: [C*128, k*128, 3] uint8."""
        config = self.config
        k = config.grid_per_class
        rng = torch.Generator().manual_seed(step_seed(config.seed, 0, 99))
        z = torch.randn(config.num_classes * k, *latent_shape(config), generator=rng).to(self.device)
        labels = torch.arange(config.num_classes).repeat_interleave(k).to(self.device)
        sampler = self.sampler()
        sampler.eval()  # batch norm's running statistics, as sampling uses them; no update
        with autocast(config.precision, self.device):
            images = sampler(z, labels)  # [C*k, 3, 128, 128]
        self.generator.train()
        tiles = to_uint8(images).reshape(config.num_classes, k, 128, 128, 3)
        return tiles.transpose(0, 2, 1, 3, 4).reshape(config.num_classes * 128, k * 128, 3)


def train(
    *,
    config: TrainingConfig,
    data: PackedPatches,
    device: torch.device,
    checkpoint_dir: Path,
    progress_fn: ProgressFn | None = None,
    abort_fn: AbortFn | None = None,
    sample_fn: SampleFn | None = None,
    checkpoint_fn: CheckpointFn | None = None,
    resume: Path | None = None,
) -> TrainResult:
    """Train until `config.steps`, or until `abort_fn()` says stop (a checkpoint is written then)."""
    if tuple(data.classes) != tuple(config.classes):
        raise ValueError(f"data classes {data.classes} differ from the config's {config.classes}")
    data.require_every_class()
    with determinism(config.deterministic, device):
        trainer = Trainer(config, device)
        step = trainer.load(resume) if resume is not None else 0
        n = len(data)
        last_checkpoint: Path | None = resume
        last_checkpoint_step = step if resume is not None else -1
        losses = torch.zeros(3, device=device)
        interval_steps = 0
        interval_start = time.perf_counter()

        def checkpoint(at: int) -> Path:
            nonlocal last_checkpoint, last_checkpoint_step
            path = checkpoint_dir / f"step-{at:07d}.pt"
            save_checkpoint(path, trainer.state(at))
            last_checkpoint, last_checkpoint_step = path, at
            if checkpoint_fn is not None:
                checkpoint_fn(at, path)
            return path

        while step < config.steps:
            if abort_fn is not None and abort_fn():
                if last_checkpoint_step != step:
                    checkpoint(step)  # nothing done so far is lost
                return TrainResult(step=step, status="cancelled", checkpoint=last_checkpoint)
            indices, epoch = batch_indices(seed=config.seed, step=step, batch_size=config.batch_size, n=n)
            real, labels = load_batch(data, indices, device)
            losses += trainer.step(real, labels, step)
            step += 1
            interval_steps += 1
            if progress_fn is not None and (step % config.log_every == 0 or step == config.steps):
                values = (losses / interval_steps).tolist()  # one device sync per interval
                elapsed = time.perf_counter() - interval_start
                rate = interval_steps * config.batch_size / elapsed if elapsed > 0 else 0.0
                left = (config.steps - step) * config.batch_size / rate if rate > 0 else None
                progress_fn(Progress(step, config.steps, epoch, values[0], values[1], values[2], rate, left))
                losses.zero_()
                interval_steps = 0
                interval_start = time.perf_counter()
            if sample_fn is not None and (step % config.sample_every == 0 or step == config.steps):
                sample_fn(step, trainer.sample_grid())
            if step % config.checkpoint_every == 0 or step == config.steps:
                checkpoint(step)
        return TrainResult(step=step, status="finished", checkpoint=last_checkpoint)
