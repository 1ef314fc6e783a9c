from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.foreground import run_in_foreground
from gan.forms import parse_overrides
from gan.models import Dataset
from gan.services import training as training_services
from gan.sources import PAPER_SYNTHETIC_COUNT


class Command(BaseCommand):
    help = "Train the paper's cGAN in the foreground, with a progress bar; the run shows on the pages."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", required=True, help="name of a real dataset")
        parser.add_argument(
            "--classes", help="comma-separated classes (default: the paper's 8, all but BACK)"
        )
        parser.add_argument("--steps", type=int, help="training steps (default 20,000; demo 5,000)")
        parser.add_argument(
            "--demo", action="store_true", help="the CPU demo configuration (not the paper's model)"
        )
        parser.add_argument(
            "--set", action="append", default=[], metavar="NAME=VALUE", help="any config field"
        )
        parser.add_argument(
            "--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ..."
        )
        parser.add_argument(
            "--sample-class", help="after training, sample this class from the last checkpoint"
        )
        parser.add_argument("--sample-count", type=int, default=PAPER_SYNTHETIC_COUNT)

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = Dataset.objects.filter(name=options["dataset"]).first()
        if dataset is None:
            names = ", ".join(Dataset.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"no dataset named {options['dataset']!r} (there are: {names})")
        try:
            overrides = parse_overrides("\n".join(options["set"]))
        except Exception as exc:
            raise CommandError(str(exc)) from None
        if options["classes"]:
            overrides["classes"] = options["classes"]
        if options["steps"]:
            overrides["steps"] = options["steps"]
        try:
            config = training_services.config_build(overrides=overrides, demo=options["demo"])
            # Checked before the run exists: a refused command leaves no run or job behind.
            if options["sample_class"] and options["sample_class"].strip().upper() not in config.classes:
                raise training_services.RunError(
                    f"cannot sample {options['sample_class']}: not among the run's classes "
                    f"({', '.join(config.classes)})"
                )
            run = training_services.training_run_start(
                dataset=dataset, config=config, device=options["device"], enqueue=False
            )
        except training_services.RunError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Training run {run.pk}: {run.name}")
        job = run_in_foreground(job=run.job, body=training_services.training_run_job, unit="training")
        run.refresh_from_db()
        self.stdout.write(f"{job.get_state_display()} at step {run.step:,} of {run.steps:,}")
        for checkpoint in run.checkpoints.order_by("step"):
            self.stdout.write(f"  checkpoint {checkpoint.pk}: step {checkpoint.step:,}")
        last = run.checkpoints.order_by("-step").first()
        if options["sample_class"] and last is not None and job.state == job.State.FINISHED:
            call_command(
                "sample",
                checkpoint=last.pk,
                tissue_class=options["sample_class"],
                count=options["sample_count"],
                device=options["device"],
                stdout=self.stdout,
            )
