"""python manage.py verify_study ID: is the study's record as it was frozen? Exit 0 "intact", 1 with each
difference named (`turing.services.study_verify`)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from turing.models import Study
from turing.services import study_verify


class Command(BaseCommand):
    help = "Recompute a frozen study's protocol and name every difference from what was frozen."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study_id", type=int)

    def handle(self, *args: Any, study_id: int, **options: Any) -> None:
        study = Study.objects.filter(pk=study_id).first()
        if study is None:
            raise CommandError(f"No study {study_id}.", returncode=2)
        differences = study_verify(study=study)
        if study.frozen_at is None and not differences:
            self.stdout.write(f"Study {study_id} is not frozen yet (no answer): nothing to verify.")
            return
        if differences:
            for line in differences:
                self.stderr.write(f"changed: {line}")
            raise CommandError(f"Study {study_id}: {len(differences)} difference(s) from its frozen record.")
        frozen = f"{study.frozen_at:%Y-%m-%d %H:%M} UTC"
        self.stdout.write(
            f"Study {study_id}: intact (protocol {study.protocol_hash[:12]}, frozen {frozen}). Answers and "
            "events are not yet covered by a hash chain."
        )
