"""The demo's comparison study: two arms from one demo GAN, made once both samplings are stored."""

from __future__ import annotations

from typing import Any

import pytest

from gan.models import Dataset, SamplingRun
from gan.services import sampling as sampling_services
from gan.services import training as training_services
from tests.gan.fixtures import TINY
from turing.models import Study
from turing.services import DEMO_STUDY

pytestmark = pytest.mark.django_db


def test_the_demo_run_samples_two_checkpoints_and_builds_a_two_arm_study(
    lym_tum: Dataset, expert: Any, other_expert: Any
) -> None:
    config = training_services.config_build(overrides=TINY, demo=True)  # checkpoints at steps 3 and 6
    run = training_services.training_run_start(
        dataset=lym_tum,
        config=config,
        enqueue=False,
        sample_after={
            "tissue_class": "LYM",
            "count": 6,
            "also_from_steps": [3],
            "demo_study": True,
            "demo_readers": ["expert-a"],
        },
    )
    training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    training_services.sampling_after_training(run=run)
    training_services.sampling_after_training(run=run)  # a second delivery starts nothing more
    samplings = list(SamplingRun.objects.order_by("-checkpoint__step"))
    assert [s.checkpoint.step for s in samplings] == [6, 3]
    assert samplings[0].dataset.generator["checkpoint_sha256"]  # the record fills itself
    first = sampling_services.sampling_run_job(samplings[0].job, context=None)  # type: ignore[arg-type]
    assert first["stored"] == 6 and not Study.objects.exists()  # the other arm is not sampled yet
    sampling_services.sampling_run_job(samplings[1].job, context=None)  # type: ignore[arg-type]
    study = Study.objects.get(name=DEMO_STUDY)
    assert list(study.arms.values_list("name", flat=True)) == [
        "last checkpoint (step 6)",
        "early checkpoint (step 3)",
    ]
    assert study.items_per_reader == 24  # the 12 real LYM patches and 6 of each arm
    # The demo's own experts only: expert-b, an expert of the site but not of the demo, is not enrolled.
    assert [a.reader.username for a in study.assignments.all()] == ["expert-a"]
    sampling_services.sampling_run_job(samplings[1].job, context=None)  # type: ignore[arg-type]
    assert Study.objects.count() == 1
