"""The demo's comparison study."""

from __future__ import annotations

import dataclasses

from django.contrib.auth import get_user_model
from django.db import transaction

from core.roles import EXPERTS_GROUP
from gan.models import SamplingRun, TrainingRun
from turing.models import (
    Study,
)
from turing.services.design import ArmSpec, StudySpec, study_plan
from turing.services.studies import study_create

DEMO_STUDY = "Demo: the demo GAN's last checkpoint against its first"


def demo_study_build(*, training_run: TrainingRun) -> Study | None:
    """The demo's two-arm study, made once every sampling its training run asked for is stored: the
    real patches it trained on against its last and its first checkpoint's samples, read by the demo's
    own experts (`demo_readers`). None while a sampling is still running, or when it exists already."""
    wanted = training_run.sample_after
    if not wanted.get("demo_study"):
        return None
    runs = list(
        SamplingRun.objects.filter(checkpoint__run=training_run).select_related("checkpoint", "dataset")
    )
    if len(runs) < 1 + len(wanted.get("also_from_steps", [])):
        return None
    if any(r.dataset.patches.count() < r.count for r in runs):
        return None
    runs.sort(key=lambda r: -r.checkpoint.step)
    last_step = runs[0].checkpoint.step
    arms = [
        ArmSpec(
            f"{'last' if r.checkpoint.step == last_step else 'early'} checkpoint (step {r.checkpoint.step})",
            [r.dataset],
            1,
        )
        for r in runs
    ]
    spec = StudySpec(
        name=DEMO_STUDY,
        real_datasets=[training_run.dataset],
        arms=arms,
        real_parts=len(arms),
        tissue_class=str(wanted["tissue_class"]).upper(),
        items_per_reader=2,
        instructions=(
            "A demo: each patch is a real H&E lymphocyte patch or one made by the demo GAN (a CPU "
            "demo configuration, not the paper's model). Label each as real or synthetic."
        ),
    )
    spec = dataclasses.replace(spec, items_per_reader=study_plan(spec).max_items)
    with transaction.atomic():
        TrainingRun.objects.select_for_update().filter(pk=training_run.pk).first()  # one caller at a time
        if Study.objects.filter(name=DEMO_STUDY).exists():
            return None
        # The demo's own experts only: an expert invited to another study is not put in the demo's.
        experts = get_user_model().objects.filter(
            groups__name=EXPERTS_GROUP, is_active=True, username__in=wanted.get("demo_readers", [])
        )
        return study_create(
            spec=spec, readers=list(experts.order_by("username")), created_by=training_run.created_by
        )
