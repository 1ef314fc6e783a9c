"""What turing does when something happens in the apps below it."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from gan.models import SamplingRun
from gan.signals import sampling_finished
from turing.services import StudyError, demo_study_build

logger = logging.getLogger(__name__)


@receiver(sampling_finished)
def demo_study_when_sampled(sender: Any, run: SamplingRun, **_: Any) -> None:
    """The demo's comparison study, once the demo run's samplings are all stored."""
    training_run = run.checkpoint.run
    if not training_run.sample_after.get("demo_study"):
        return
    try:
        study = demo_study_build(training_run=training_run)
    except StudyError:  # the sampling itself succeeded: say why there is no demo study, and go on
        logger.exception("the demo study could not be built")
        return
    if study is not None:
        logger.info("demo study %s built with %d arms", study.pk, study.arms.count())
