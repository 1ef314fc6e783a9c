"""What evaluation does when something happens in the apps below it."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from evaluation.services import class_check_start
from gan.models import Dataset, SamplingRun
from gan.signals import dataset_imported, sampling_finished


@receiver(dataset_imported)
def class_check_when_imported(sender: Any, dataset: Dataset, **_: Any) -> None:
    class_check_start(dataset=dataset)


@receiver(sampling_finished)
def class_check_when_sampled(sender: Any, run: SamplingRun, **_: Any) -> None:
    class_check_start(dataset=run.dataset)
