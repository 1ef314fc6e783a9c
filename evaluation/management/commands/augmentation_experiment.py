from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.foreground import run_in_foreground
from evaluation import services
from gan.models import Dataset, SamplingRun


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CommandError(f"{text!r} is not a comma-separated list of whole numbers") from None


class Command(BaseCommand):
    help = "Does adding synthetic patches of a class help the tissue classifier? Runs in the foreground."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--train", required=True, help="real training dataset")
        parser.add_argument("--test", required=True, help="real test dataset, from other slides")
        parser.add_argument("--sampling-run", type=int, required=True)
        parser.add_argument("--class", dest="tissue_class", default="LYM")
        parser.add_argument("--amounts", default="0,100,500,1000")
        parser.add_argument(
            "--fraction", type=float, default=0.25, help="share of real patches of the class kept"
        )
        parser.add_argument("--seeds", default="0,1,2")
        parser.add_argument("--classes", help="comma-separated classes (default: all in the training set)")
        parser.add_argument("--epochs", type=int, default=5)
        parser.add_argument("--width", type=int, default=16)
        parser.add_argument(
            "--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ..."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        datasets: dict[str, Dataset] = {}
        for role in ("train", "test"):
            dataset = Dataset.objects.filter(name=options[role]).first()
            if dataset is None:
                raise CommandError(f"no dataset named {options[role]!r}")
            datasets[role] = dataset
        run = SamplingRun.objects.filter(pk=options["sampling_run"]).first()
        if run is None:
            raise CommandError(f"no sampling run with id {options['sampling_run']}")
        try:
            plan = services.augmentation_plan(
                train_dataset=datasets["train"],
                test_dataset=datasets["test"],
                sampling_run=run,
                tissue_class=options["tissue_class"],
                amounts=_ints(options["amounts"]),
                fraction=options["fraction"],
                seeds=_ints(options["seeds"]),
                classes=options["classes"].split(",") if options["classes"] else None,
                classifier={"epochs": options["epochs"], "width": options["width"]},
            )
            experiment = services.augmentation_start(plan=plan, device=options["device"], enqueue=False)
        except services.ExperimentError as exc:
            raise CommandError(str(exc)) from None
        run_in_foreground(job=experiment.job, body=services.augmentation_job, unit="experiment")
        experiment.refresh_from_db()
        for arm in experiment.results.get("arms", []):
            test = arm.get("mcnemar_vs_baseline")
            self.stdout.write(
                f"{arm['arm']:<28} n={arm['n_train']:<6} accuracy {arm['accuracy']['mean']:.3f}  "
                f"macro F1 {arm['macro_f1']['mean']:.3f}  recall {arm['recall_c']['mean']:.3f}"
                + (f"  McNemar p {test['p_value']:.3g}" if test else "")
            )
