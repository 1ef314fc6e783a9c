from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gan.services.gpu_check import GpuCheck, gpu_check
from neural.sampling import BATCH_TOLERANCE


def _percent(share: float | None) -> str:
    return "unknown" if share is None else f"{100 * share:.1f}%"


class Command(BaseCommand):
    help = (
        "Train the paper's network for a few hundred steps on the demo data and print training images per "
        "second, sampled patches stored per second, the per-image-seed check and the share of the bf16 peak."
    )
    requires_system_checks: list[str] = []  # touches no database

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--device", default="auto", help="auto (CUDA when present), cuda, cuda:1 or cpu")
        parser.add_argument("--steps", type=int, default=300, help="training steps (the paper's network)")
        parser.add_argument("--batch", type=int, default=125, help="the paper's batch size by default")
        parser.add_argument("--count", type=int, help="patches to sample (default: 1024 on CUDA, 16 on CPU)")
        parser.add_argument("--json", help="also write the figures to this file")

    def handle(self, *args: Any, **options: Any) -> None:
        from neural.runtime import pick_device

        if options["steps"] < 1 or options["batch"] < 1:
            raise CommandError("--steps and --batch must be at least 1")
        try:
            device = pick_device(options["device"])
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        count = options["count"] or (1024 if device.type == "cuda" else 16)
        if count < 1:
            raise CommandError("--count must be at least 1")
        self.stdout.write(f"GPU check on {device}: {options['steps']} steps of the paper's network ...")
        result = gpu_check(device=device, steps=options["steps"], batch_size=options["batch"], count=count)
        self._report(result)
        if options["json"]:
            with open(options["json"], "w") as out:
                json.dump(asdict(result), out, indent=2)
        if not result.reproducibility.within_tolerance:
            raise CommandError(
                f"sampling is not reproducible per image seed within {BATCH_TOLERANCE} grey level(s) here"
            )

    def _report(self, r: GpuCheck) -> None:
        repro = r.reproducibility
        lines = [
            f"device: {r.device_name} ({r.device}), torch {r.torch_version}, bf16 autocast: "
            f"{'on' if r.bf16 else 'off (no fast bf16 here: fp32)'}",
            f"training: {r.training_images_per_second:,.1f} images/s (batch {r.batch_size}, "
            f"the paper's network, {r.steps} steps; {r.training_images:,} images timed after the warm-up)",
            f"work: {r.step_gflop:,.1f} GFLOP per step; {r.achieved_tflops:,.2f} TFLOP/s achieved = "
            f"{_percent(r.share_of(r.datasheet_bf16_tflops))} of the datasheet bf16 peak"
            + (f" ({r.datasheet_bf16_tflops:,.1f} TFLOP/s)" if r.datasheet_bf16_tflops else "")
            + f", {_percent(r.share_of(r.measured_bf16_tflops))} of a measured bf16 matmul "
            f"({r.measured_bf16_tflops:,.1f} TFLOP/s)",
            f"sampling: {r.generated_per_second:,.1f} patches/s generated, "
            f"{r.stored_per_second:,.1f} patches/s generated and stored "
            f"({r.sampled:,} LYM patches, PNG, {r.storage}; each batch of 64 is stored while the next is "
            f"generated, the last after"
            + (
                "; with one batch nothing overlaps, so --count 1024 or more gives the steady rate"
                if r.sampled <= 64
                else ""
            )
            + ")",
            f"per-image seeds: {'batched' if repro.batched else 'one at a time'}; each image within "
            f"{repro.max_difference_to_alone} grey level(s) of its seed alone "
            f"({100 * repro.differing_pixels:.3f}% of values differ), the same bytes again: "
            f"{'yes' if repro.repeatable else 'NO'} -> "
            f"{'within' if repro.within_tolerance else 'OUTSIDE'} the tolerance of {BATCH_TOLERANCE}",
        ]
        for line in lines:
            self.stdout.write(line)
