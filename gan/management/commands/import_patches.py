from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from gan import download, services


class Command(BaseCommand):
    help = (
        "Import a folder or .zip laid out like NCT-CRC-HE-100K (one folder per class) as a dataset "
        "of 128x128 RGB patches. Every class but BACK by default."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", help="folder or .zip to import")
        parser.add_argument(
            "--classes", help="comma-separated tissue classes, e.g. LYM,TUM (default: all but BACK)"
        )
        parser.add_argument("--name", help="dataset name (default: the folder or zip name)")
        parser.add_argument("--demo", action="store_true", help="mark the dataset as demo data")
        parser.add_argument(
            "--download",
            action="store_true",
            help="fetch NCT-CRC-HE-100K.zip from its Zenodo record first (resumable, checksum-checked)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["path"]
        if options["download"]:
            path = self._download()
        if not path:
            raise CommandError("give a PATH to import, or --download")
        classes = options["classes"].split(",") if options["classes"] else None
        bar = tqdm(total=0, unit="img", desc="importing", disable=options["verbosity"] == 0)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)  # tqdm throttles its own redraws

        try:
            report = services.dataset_import(
                path=Path(path),
                name=options["name"],
                classes=classes,
                is_demo=options["demo"],
                progress=progress,
            )
        except services.DatasetImportError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        for line in report.lines():
            self.stdout.write(line)

    def _download(self) -> Path:
        bar = tqdm(total=0, unit="B", unit_scale=True, desc="downloading")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)  # tqdm throttles its own redraws

        try:
            return download.download(
                record_url=str(settings.ZENODO_RECORD_URL), dest_dir=settings.DOWNLOAD_DIR, progress=progress
            )
        except download.DownloadError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
