from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.foreground import run_in_foreground
from gan.models import Checkpoint
from gan.services import sampling as sampling_services
from gan.services.training import RunError
from gan.sources import PAPER_SYNTHETIC_COUNT


class Command(BaseCommand):
    help = "Generate synthetic patches of one class from a checkpoint, in the foreground."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint", type=int, required=True, help="checkpoint id (see the run's page)"
        )
        parser.add_argument("--class", dest="tissue_class", default="LYM")
        parser.add_argument("--count", type=int, default=PAPER_SYNTHETIC_COUNT)
        parser.add_argument("--seed", type=int, default=0, help="image i gets seed + i")
        parser.add_argument("--device", default="auto")

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoint = Checkpoint.objects.select_related("run").filter(pk=options["checkpoint"]).first()
        if checkpoint is None:
            raise CommandError(f"no checkpoint with id {options['checkpoint']}")
        try:
            run = sampling_services.sampling_run_start(
                checkpoint=checkpoint,
                tissue_class=options["tissue_class"],
                count=options["count"],
                seed=options["seed"],
                device=options["device"],
                enqueue=False,
            )
        except RunError as exc:
            raise CommandError(str(exc)) from None
        run_in_foreground(job=run.job, body=sampling_services.sampling_run_job, unit="sampling")
        self.stdout.write(f"{run.patches.count():,} patches in dataset {run.dataset.name!r}")
