"""Sampling throughput: patches generated and stored per second against the bare generator forward.

Runs the project's own sampling path (`sampling_run_execute`: latents from per-image seeds, the
generator, the common PNG pipeline, Django's storage and the database) on a throw-away SQLite
database, and the bare forward of the same generator on the same seeds. Storing should cost under 20%
of the time on a folder, under 25% on an S3 object store (`--storage s3`: a moto S3 server process on
the loopback, spoken to over HTTP, unless AWS_S3_ENDPOINT_URL and AWS_STORAGE_BUCKET_NAME name one).

    python bench/sampling_throughput.py                   # the paper's generator, 256 patches
    python bench/sampling_throughput.py --count 2534 --device cuda
    python bench/sampling_throughput.py --demo --count 1024 --storage s3
"""

from __future__ import annotations

import os
import sys
import time
from argparse import ArgumentParser, RawDescriptionHelpFormatter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--demo", action="store_true", help="the CPU demo generator instead of the paper's")
    parser.add_argument("--storage", choices=("filesystem", "s3"), default="filesystem")
    parser.add_argument(
        "--threads",
        type=int,
        help="PyTorch threads of the generator (CPU): 1 leaves the other cores to storing and to an S3 "
        "server on this machine, as a GPU leaves a worker's cores",
    )
    args = parser.parse_args()

    from tests.servers import bench_environment

    with bench_environment(args.storage) as (workdir, server):
        run(args, workdir, server)


def run(args: Any, workdir: str, server: Any) -> None:
    import django

    django.setup()
    import torch
    from django.core.management import call_command

    from core.filecache import file_sha256
    from gan.models import Checkpoint, Dataset, TrainingRun
    from gan.services import sampling as sampling_services
    from gan.services.checkpoints import checkpoint_local
    from neural.checkpoint import save_checkpoint
    from neural.config import TrainingConfig, demo_config
    from neural.loop import Trainer
    from neural.runtime import pick_device
    from neural.sampling import generate, load_generator

    call_command("migrate", verbosity=0)
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = demo_config() if args.demo else TrainingConfig()
    # A checkpoint of freshly initialised weights: the cost of sampling does not depend on training.
    path = Path(workdir) / "step-0000000.pt"
    save_checkpoint(path, Trainer(config, torch.device("cpu")).state(0))
    from django.core.files import File
    from django.core.files.storage import default_storage

    with path.open("rb") as handle:
        stored_name = default_storage.save("checkpoints/bench/step-0000000.pt", File(handle))
    from core.services import job_create

    dataset = Dataset.objects.create(name="bench real")
    run = TrainingRun.objects.create(
        name="bench",
        dataset=dataset,
        config=config.to_dict(),
        job=job_create(kind="training", task_name="gan.training_run", enqueue=False),
    )
    checkpoint = Checkpoint.objects.create(run=run, step=0, file=stored_name, sha256=file_sha256(path))

    generator, loaded, _ = load_generator(checkpoint_local(checkpoint), device)
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

    # A worker's store threads keep their connections from one run to the next: a first, short run
    # opens them (a tenth of a second of CPU each), as the generator's warm-up above warms its kernels.
    warmup = sampling_services.sampling_run_start(
        checkpoint=checkpoint, tissue_class="LYM", count=args.batch, seed=10**9, enqueue=False
    )
    sampling_services.sampling_run_execute(
        run=warmup, context=None, device_preference=str(device), batch_size=args.batch
    )
    sampling = sampling_services.sampling_run_start(
        checkpoint=checkpoint, tissue_class="LYM", count=args.count, seed=0, enqueue=False
    )
    server_cpu = _cpu_seconds(server)
    start = time.perf_counter()
    sampling_services.sampling_run_execute(
        run=sampling, context=None, device_preference=str(device), batch_size=args.batch
    )
    full = time.perf_counter() - start
    server_cpu = _cpu_seconds(server) - server_cpu
    stored = sampling.patches.count()
    print(
        f"device: {device}; generator: {'demo' if args.demo else 'paper'} ({loaded.g_filters} filters, "
        f"latent {loaded.latent_dim}); {args.count} LYM patches, each generated alone, "
        f"stored {args.batch} at a time; {torch.get_num_threads()} PyTorch thread(s), {os.cpu_count()} cores"
    )
    print(f"bare generator forward (incl. latents and uint8 conversion): {args.count / bare:8.1f} patches/s")
    target = 25 if args.storage == "s3" else 20
    where = default_storage.__class__.__name__
    print(f"generated and stored (PNG, {where}, database): {stored / full:8.1f} patches/s")
    print(f"share of the time spent storing: {100 * (full - bare) / full:.1f}% (target: under {target}%)")
    if server is not None:
        print(
            f"the S3 server beside it on this machine used {server_cpu:.1f} s of CPU "
            f"({1000 * server_cpu / max(stored, 1):.1f} ms per patch) of the run's "
            f"{full * (os.cpu_count() or 1):.0f} core-seconds (a store elsewhere leaves them to sampling)"
        )


def _cpu_seconds(server: Any) -> float:
    if server is None or server.proc is None:
        return 0.0
    import psutil

    times = psutil.Process(server.proc.pid).cpu_times()
    return float(times.user + times.system)


if __name__ == "__main__":
    main()
