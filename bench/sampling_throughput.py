"""Sampling throughput: patches generated and stored per second against the bare generator forward.

Runs the project's own sampling path (`sampling_run_execute`: latents from per-image seeds, the
generator, the common PNG pipeline, Django's storage and the database) on a throw-away SQLite
database and media folder, and the bare forward of the same generator on the same seeds. Storing
should cost under 20% of the time.

    python bench/sampling_throughput.py                   # the paper's generator, 256 patches
    python bench/sampling_throughput.py --count 2534 --device cuda
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from argparse import ArgumentParser, RawDescriptionHelpFormatter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--demo", action="store_true", help="the CPU demo generator instead of the paper's")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="histoturing-bench-")
    os.environ.update(
        {"DEBUG": "1", "HISTOTURING_DATA_DIR": workdir, "DJANGO_SETTINGS_MODULE": "config.settings"}
    )
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    import torch
    from django.core.management import call_command

    from gan.models import Checkpoint, Dataset, TrainingRun
    from gan.services import sampling as sampling_services
    from gan.services.training import checkpoint_path
    from neural.checkpoint import save_checkpoint
    from neural.config import TrainingConfig, demo_config
    from neural.loop import Trainer
    from neural.runtime import pick_device
    from neural.sampling import generate, load_generator

    call_command("migrate", verbosity=0)
    device = pick_device(args.device)
    config = demo_config() if args.demo else TrainingConfig()
    # A checkpoint of freshly initialised weights: the cost of sampling does not depend on training.
    path = Path(workdir) / "media" / "checkpoints" / "bench" / "step-0000000.pt"
    save_checkpoint(path, Trainer(config, torch.device("cpu")).state(0))
    from core.services import job_create

    dataset = Dataset.objects.create(name="bench real")
    run = TrainingRun.objects.create(
        name="bench",
        dataset=dataset,
        config=config.to_dict(),
        job=job_create(kind="training", task_name="gan.training_run", enqueue=False),
    )
    checkpoint = Checkpoint.objects.create(run=run, step=0, file="checkpoints/bench/step-0000000.pt")

    generator, loaded, _ = load_generator(checkpoint_path(checkpoint), device)
    lym = loaded.classes.index("LYM")  # the demo config has LYM alone, the paper's eight classes
    seeds = list(range(args.count))
    warm = next(
        generate(
            generator,
            class_index=lym,
            seeds=seeds[: args.batch],
            device=device,
            batch_size=args.batch,
        )
    )
    del warm
    start = time.perf_counter()
    for _ in generate(
        generator,
        class_index=lym,
        seeds=seeds,
        device=device,
        batch_size=args.batch,
    ):
        pass
    bare = time.perf_counter() - start

    sampling = sampling_services.sampling_run_start(
        checkpoint=checkpoint, tissue_class="LYM", count=args.count, seed=0, enqueue=False
    )
    start = time.perf_counter()
    sampling_services.sampling_run_execute(
        run=sampling, context=None, device_preference=str(device), batch_size=args.batch
    )
    full = time.perf_counter() - start
    stored = sampling.patches.count()
    print(
        f"device: {device}; generator: {'demo' if args.demo else 'paper'} ({loaded.g_filters} filters, "
        f"latent {loaded.latent_dim}); {args.count} LYM patches, each generated alone, "
        f"stored {args.batch} at a time"
    )
    print(f"bare generator forward (incl. latents and uint8 conversion): {args.count / bare:8.1f} patches/s")
    print(f"generated and stored (PNG, storage, database):                 {stored / full:8.1f} patches/s")
    print(f"share of the time spent storing: {100 * (full - bare) / full:.1f}% (target: under 20%)")


if __name__ == "__main__":
    main()
