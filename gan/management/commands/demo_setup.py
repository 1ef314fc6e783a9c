from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from core import services
from gan.models import Dataset, TrainingRun
from gan.services import dataset_import
from gan.services.training import config_build, training_run_start

DEMO_USERS = (
    ("admin", "administrator", "demo-admin"),
    ("manager", "manager", "demo-manager"),
    ("expert1", "expert", "demo-expert1"),
    ("expert2", "expert", "demo-expert2"),
)
DEMO_DATASETS = (("CRC-VAL-HE-7K", "Demo CRC-VAL-HE-7K"), ("NCT-CRC-HE-100K", "Demo NCT-CRC-HE-100K"))


class Command(BaseCommand):
    help = "Import the bundled demo patches and create the demo accounts (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet-users", action="store_true", help="do not print the demo passwords")
        parser.add_argument("--no-training", action="store_true", help="do not queue the demo training run")

    def handle(self, *args: Any, **options: Any) -> None:
        demo_root = settings.BASE_DIR / "demo" / "data"
        for folder, name in DEMO_DATASETS:
            # The demo PNGs are NCT-CRC-HE-100K's 224 px patches at 0.5 um/px, already resampled to 128 px.
            report = dataset_import(
                path=demo_root / folder, name=name, is_demo=True, source_microns_per_pixel=0.5 * 224 / 128
            )
            self.stdout.write(f"{name}: {report.total_imported} new patches")
        User = get_user_model()
        lines = []
        for username, role, password in DEMO_USERS:
            if not User.objects.filter(username=username).exists():
                services.user_create(username=username, role=role, password=password, validate=False)
            label = {"manager": "study manager", "administrator": "administrator"}.get(role, "expert")
            lines.append(f"  {label:<14} user {username:<9} password {password}")
        if not options["no_training"] and not TrainingRun.objects.exists():
            # The CPU demo config on the demo LYM patches: about 5 minutes on the gpu-queue worker, then
            # 48 LYM patches are sampled from its last checkpoint and 48 from its first; once both are
            # stored, a demo study compares them as two arms (`turing.signals`).
            config = config_build(demo=True)
            run = training_run_start(
                dataset=Dataset.objects.get(name=DEMO_DATASETS[0][1]),
                config=config,
                name="Demo cGAN (CPU demo configuration)",
                sample_after={
                    "tissue_class": "LYM",
                    "count": 48,
                    "also_from_steps": [config.checkpoint_every],
                    "demo_study": True,
                    # Its readers: the demo's own experts, never an expert invited to another study.
                    "demo_readers": [name for name, role, _ in DEMO_USERS if role == "expert"],
                },
            )
            self.stdout.write(
                f"Queued a demo training run: /manage/gan/runs/{run.pk}/ "
                "(about 5 minutes on 2 CPU cores; the site is usable meanwhile)"
            )
        if not options["quiet_users"]:
            self.stdout.write("Demo accounts (for a local demo only):")
            for line in lines:
                self.stdout.write(line)
