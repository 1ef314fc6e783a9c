"""Training throughput: the project's step against a plain PyTorch loop of the same network and batch.

Prints images per second of both, the machine's measured matmul rate (fp32 and bf16), the FLOPs of
one training step (counted by torch.utils.flop_counter), and the share of the measured peak each
loop reaches. Then a short learning check: the same small run in fp32 and in bf16, with loss and
sample statistics side by side, to show that bf16 still learns.

    python bench/train_throughput.py                      # the paper's network at batch 125
    python bench/train_throughput.py --device cuda        # on a GPU
    python bench/train_throughput.py --check-steps 0      # throughput only
    python bench/train_throughput.py --storage s3         # the training data through an object store

With `--storage` (filesystem, or s3: a moto S3 server process on the loopback): the demo patches are
imported into that storage and packed as a training run packs them (`training_data_pack`), timed three
ways (packed and published; from the worker's cache; from the store into an empty cache), and the
project's steps are timed with their batches read from the memory-mapped pack against the same batches
already in memory: the packs must not slow the steps.
"""

from __future__ import annotations

import argparse
import sys
import time
from argparse import ArgumentParser, RawDescriptionHelpFormatter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neural.config import TrainingConfig, demo_config
from neural.data import PackedPatches, batch_indices, load_batch
from neural.loop import Trainer
from neural.model import build_models
from neural.runtime import pick_device

REPO = Path(__file__).resolve().parents[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Measured GFLOP/s of an n x n matmul."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


class PlainLoop:
    """A straightforward fp32 cGAN step, as a tutorial would write it: no autocast, NCHW, no tricks."""

    def __init__(self, config: TrainingConfig, device: torch.device) -> None:
        torch.manual_seed(config.seed)
        generator, discriminator = build_models(config)
        self.g, self.d = generator.to(device), discriminator.to(device)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=config.lr_g, betas=(config.beta1, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=config.lr_d, betas=(config.beta1, 0.999))
        self.config, self.device = config, device

    def step(self, real: torch.Tensor, labels: torch.Tensor) -> None:
        z = torch.randn(real.shape[0], self.config.latent_dim, device=self.device)
        fake_labels = torch.randint(self.config.num_classes, (real.shape[0],), device=self.device)
        fake = self.g(z, fake_labels)
        self.opt_d.zero_grad()
        d_real, d_fake = self.d(real, labels), self.d(fake.detach(), fake_labels)
        loss_d = F.binary_cross_entropy_with_logits(
            d_real, torch.ones_like(d_real)
        ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        loss_d.backward()
        self.opt_d.step()
        self.opt_g.zero_grad()
        out = self.d(fake, fake_labels)
        F.binary_cross_entropy_with_logits(out, torch.ones_like(out)).backward()
        self.opt_g.step()


def time_steps(step: callable, device: torch.device, warmup: int, steps: int) -> float:  # type: ignore[valid-type]
    for _ in range(warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - start) / steps


def step_flops(config: TrainingConfig, device: torch.device) -> int:
    plain = PlainLoop(config.replace(batch_size=2), device)
    real = torch.randn(2, 3, 128, 128, device=device)
    labels = torch.zeros(2, dtype=torch.long, device=device)
    with FlopCounterMode(display=False) as counter:
        plain.step(real, labels)
    return int(counter.get_total_flops() * config.batch_size / 2)


def throughput(args: argparse.Namespace, device: torch.device) -> None:
    project_config = TrainingConfig(
        batch_size=args.batch, precision=args.precision, channels_last=True, compile=args.compile
    )
    plain_config = TrainingConfig(batch_size=args.batch, precision="fp32", channels_last=False)
    batch = args.batch
    real = torch.rand(batch, 3, 128, 128, device=device) * 2 - 1
    labels = torch.randint(8, (batch,), device=device)

    fp32_rate = matmul_rate(device, torch.float32)
    bf16_rate = matmul_rate(device, torch.bfloat16)
    flops = step_flops(plain_config, device)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{torch.get_num_threads()} CPU threads"
    )
    print(f"device: {device} ({where})")
    print(
        f"torch {torch.__version__}; batch {batch}; the paper's network (latent 1500, 128 filters, 128x128)"
    )
    ratio = bf16_rate / fp32_rate
    print(f"measured matmul: fp32 {fp32_rate:,.0f} GFLOP/s, bf16 {bf16_rate:,.0f} GFLOP/s ({ratio:.1f}x)")
    print(f"one training step: {flops / 1e9:,.1f} GFLOP ({flops / batch / 1e9:.2f} GFLOP per image)")

    plain = PlainLoop(plain_config, device)
    plain_s = time_steps(lambda: plain.step(real, labels), device, args.warmup, args.steps)
    trainer = Trainer(project_config, device)
    real_cl = real.contiguous(memory_format=torch.channels_last)
    counter = iter(range(10**9))
    project_s = time_steps(
        lambda: trainer.step(real_cl, labels, next(counter)), device, args.warmup, args.steps
    )

    for name, seconds, peak in (
        ("plain fp32 loop", plain_s, fp32_rate),
        (
            f"project step ({args.precision}, channels_last{', compiled' if args.compile else ''})",
            project_s,
            bf16_rate if args.precision == "bf16" else fp32_rate,
        ),
    ):
        achieved = flops / seconds / 1e9
        print(
            f"{name:<48} {batch / seconds:9.1f} img/s  {seconds * 1000:9.1f} ms/step  "
            f"{achieved:9,.0f} GFLOP/s = {100 * achieved / peak:5.1f}% of measured matmul peak"
        )
    print(f"speed-up of the project step over the plain loop: {plain_s / project_s:.2f}x")


def learning_check(args: argparse.Namespace, device: torch.device) -> None:
    """The same short demo-size run in fp32 and bf16 on the bundled demo patches."""
    from PIL import Image

    root = Path(__file__).resolve().parents[1] / "demo" / "data" / "CRC-VAL-HE-7K"
    config = demo_config(steps=args.check_steps, batch_size=32)
    index = {c: i for i, c in enumerate(config.classes)}
    files = sorted(p for p in root.rglob("*.png") if p.parent.name in index)
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files])
    labels = np.array([index[p.parent.name] for p in files])
    data = PackedPatches.from_arrays(images, labels, config.classes)
    real_mean, real_std = images.mean() / 127.5 - 1, (images / 127.5 - 1).std()
    print(
        f"\nlearning check: {args.check_steps} steps of the demo config (batch 32), {len(files)} demo patches"
    )
    print(f"real patches: pixel mean {real_mean:+.3f}, std {real_std:.3f} (in [-1, 1])")
    for precision in ("fp32", "bf16"):
        trainer = Trainer(config.replace(precision=precision), device)
        losses = []
        start = time.perf_counter()
        for step in range(config.steps):
            idx, _ = batch_indices(seed=0, step=step, batch_size=config.batch_size, n=len(data))
            real, lab = load_batch(data, idx, device)
            losses.append(trainer.step(real, lab, step).tolist())
        elapsed = time.perf_counter() - start
        grid = trainer.sample_grid().astype(np.float64) / 127.5 - 1
        first, last = np.mean(losses[:20], axis=0), np.mean(losses[-20:], axis=0)
        out = Path(args.out) / f"grid-{precision}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(((grid + 1) * 127.5).round().astype(np.uint8)).save(out)
        print(
            f"{precision}: {elapsed:6.1f} s; losses (D real, D fake, G) first 20 steps {np.round(first, 3)} "
            f"-> last 20 {np.round(last, 3)}; samples mean {grid.mean():+.3f} std {grid.std():.3f}; {out}"
        )


def packs_check(args: argparse.Namespace, device: torch.device) -> None:
    from tests.servers import bench_environment

    with bench_environment(args.storage):
        _packs_check(args, device)


def _packs_check(args: argparse.Namespace, device: torch.device) -> None:
    import shutil

    import django

    django.setup()
    from django.conf import settings
    from django.core.files.storage import default_storage
    from django.core.management import call_command

    from gan.models import Dataset
    from gan.services import dataset_import
    from gan.services.training import training_data_pack

    call_command("migrate", verbosity=0)
    paper = TrainingConfig()
    config = (demo_config().replace(classes=paper.classes) if args.demo else paper).replace(
        batch_size=args.batch
    )
    report = dataset_import(
        path=REPO / "demo" / "data" / "CRC-VAL-HE-7K", name="bench", classes=config.classes
    )
    dataset = Dataset.objects.get(pk=report.dataset_id)
    timings = {}
    for how in (
        "packed from the patches and published",
        "from the worker's cache",
        "from the store, cache empty",
    ):
        if how.startswith("from the store"):
            shutil.rmtree(settings.WORKER_CACHE_DIR)
        start = time.perf_counter()
        pack = training_data_pack(dataset=dataset, classes=config.classes)
        timings[how] = time.perf_counter() - start
    print(
        f"storage: {default_storage.__class__.__name__}; {len(pack)} demo patches, "
        f"{len(config.classes)} classes"
    )
    for how, seconds in timings.items():
        print(f"  pack {how}: {seconds * 1000:8.1f} ms")

    trainer = Trainer(config, device)
    in_memory = [
        load_batch(pack, batch_indices(seed=0, step=s, batch_size=args.batch, n=len(pack))[0], device)
        for s in range(args.steps + args.warmup)
    ]
    counter = iter(range(10**9))
    memory_s = time_steps(
        lambda: trainer.step(*in_memory[next(counter) % len(in_memory)], 0),
        device,
        args.warmup,
        args.steps,
    )
    counter = iter(range(10**9))

    def from_pack() -> None:
        step = next(counter)
        indices, _ = batch_indices(seed=0, step=step, batch_size=args.batch, n=len(pack))
        trainer.step(*load_batch(pack, indices, device), step)

    pack_s = time_steps(from_pack, device, args.warmup, args.steps)
    print(f"  steps, batches already in memory:     {args.batch / memory_s:9.1f} img/s")
    print(
        f"  steps, batches read from the pack:    {args.batch / pack_s:9.1f} img/s "
        f"({100 * (pack_s - memory_s) / memory_s:+.1f}%)"
    )


def main() -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=125)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per loop")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    parser.add_argument("--compile", action="store_true", help="torch.compile the project's networks (CUDA)")
    parser.add_argument(
        "--check-steps", type=int, default=150, help="steps of the bf16/fp32 learning check (0: skip)"
    )
    parser.add_argument("--out", default="bench/out", help="where the learning check's sample grids go")
    parser.add_argument("--storage", choices=("filesystem", "s3"), help="time the packs through this storage")
    parser.add_argument("--demo", action="store_true", help="with --storage: the demo network's steps")
    args = parser.parse_args()
    device = pick_device(args.device)
    if args.storage:
        packs_check(args, device)
        return
    throughput(args, device)
    if args.check_steps:
        learning_check(args, device)


if __name__ == "__main__":
    main()
