"""python manage.py verify_study ID: is the study's record as it was written? Exit 0 "intact", 1 with
each difference named (`turing.services.study_verify`).

python manage.py verify_study --archive FILE.zip: the same of a study's archive, offline, with no
database (`evaluation.archive_check`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.archive_check import archive_check
from turing.models import Study
from turing.selectors import study_record_head
from turing.services import study_verify


class Command(BaseCommand):
    help = (
        "Recompute a study's protocol and its record's hash chain and name every difference from what was "
        "written; or check a study archive offline (--archive)."
    )
    requires_system_checks: list[str] = []  # an archive is checked with no database at hand

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study_id", type=int, nargs="?")
        parser.add_argument("--archive", type=Path, help="a study archive (.zip) to check offline")

    def handle(self, *args: Any, study_id: int | None, archive: Path | None, **options: Any) -> None:
        if (study_id is None) == (archive is None):
            raise CommandError(
                "Name a study id, or an archive with --archive (one of the two).", returncode=2
            )
        if archive is not None:
            self._archive(archive)
            return
        assert study_id is not None
        study = Study.objects.filter(pk=study_id).first()
        if study is None:
            raise CommandError(f"No study {study_id}.", returncode=2)
        differences = study_verify(study=study)
        if differences:
            for line in differences:
                self.stderr.write(f"changed: {line}")
            raise CommandError(f"Study {study_id}: {len(differences)} difference(s) from its record.")
        head = study_record_head(study_id=study.pk)
        entries = study.record.count()
        if study.frozen_at is None:
            self.stdout.write(
                f"Study {study_id} is not frozen yet (no answer); its record is intact ({entries} entries, "
                f"head {head})."
            )
            return
        frozen = f"{study.frozen_at:%Y-%m-%d %H:%M} UTC"
        self.stdout.write(
            f"Study {study_id}: intact (protocol {study.protocol_hash[:12]}, frozen {frozen}; "
            f"{entries} record entries, head {head})."
        )

    def _archive(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror or exc}", returncode=2) from None
        check = archive_check(data)
        for line in check.facts:
            self.stdout.write(f"checked: {line}")
        if not check.intact:
            for line in check.problems:
                self.stderr.write(f"changed: {line}")
            raise CommandError(f"{path.name}: {len(check.problems)} difference(s).")
        self.stdout.write(f"{path.name}: intact.")
