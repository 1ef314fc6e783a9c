from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from gan import download, imaging, services
from gan.models import Dataset
from gan.signals import dataset_imported


class Command(BaseCommand):
    help = (
        "Import a folder or .zip laid out like NCT-CRC-HE-100K (one folder per class) as a dataset "
        "of 128x128 RGB patches (--size for another). Real patches by default; --synthetic with "
        "--generator NAME imports a synthetic set made outside histoturing. Every class but BACK by default."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", help="folder or .zip to import")
        parser.add_argument(
            "--classes", help="comma-separated tissue classes, e.g. LYM,TUM (default: all but BACK)"
        )
        parser.add_argument("--name", help="dataset name (default: the folder or zip name)")
        parser.add_argument("--demo", action="store_true", help="mark the dataset as demo data")
        parser.add_argument(
            "--size",
            type=int,
            default=imaging.PATCH_SIZE,
            help="patch size in px (default: 128, the paper's)",
        )
        parser.add_argument(
            "--microns-per-pixel",
            type=float,
            help="the source images' resolution, for the scale bar (NCT-CRC-HE-100K: 0.5 at 224 px)",
        )
        synthetic = parser.add_argument_group("synthetic sets")
        synthetic.add_argument("--synthetic", action="store_true", help="the images are generated, not real")
        synthetic.add_argument(
            "--generator", default="", help="the generator's name (required with --synthetic)"
        )
        synthetic.add_argument(
            "--generator-kind", default="other", help=f"one of {', '.join(services.GENERATOR_KINDS)}"
        )
        synthetic.add_argument("--description", default="", help="free text: model, training data, version")
        synthetic.add_argument("--checkpoint-file", help="the weights file, to record its SHA-256")
        synthetic.add_argument(
            "--sampling", default="", help="sampling settings as a JSON object, e.g. '{\"truncation\": 0.7}'"
        )
        synthetic.add_argument("--origin", default="", help="where the images came from (default: PATH)")
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
        generator = self._generator(options)
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
                generator=generator,
                size=options["size"],
                source_microns_per_pixel=options["microns_per_pixel"],
                progress=progress,
            )
        except services.DatasetImportError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        for line in report.lines():
            self.stdout.write(line)
        if report.dataset_id is not None:  # what the import page's job does next (the class check)
            dataset_imported.send(sender=Dataset, dataset=Dataset.objects.get(pk=report.dataset_id))

    def _generator(self, options: dict[str, Any]) -> services.Generator | None:
        given = [
            f"--{o.replace('_', '-')}" for o in ("generator", "checkpoint_file", "sampling") if options[o]
        ]
        if not options["synthetic"]:
            if given:
                raise CommandError(f"{', '.join(given)} describe(s) a synthetic set: add --synthetic")
            return None
        try:
            return services.generator_describe(
                name=options["generator"],
                kind=options["generator_kind"],
                description=options["description"],
                checkpoint_file=Path(options["checkpoint_file"]) if options["checkpoint_file"] else None,
                sampling=options["sampling"],
                origin=options["origin"],
            )
        except services.DatasetImportError as exc:
            raise CommandError(str(exc)) from None

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
