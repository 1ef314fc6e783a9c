"""The study builder's preview: what a design would hold and need, before anything is written."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from analysis import planning
from turing.services.design import SampleSize, StudyPlan, StudySpec, sample_size, study_plan
from turing.services.items import shortcut_check_pools


@dataclass(frozen=True)
class Preview:
    spec: StudySpec  # as asked, or with the items per reader the pools fill (`fitted`)
    plan: StudyPlan
    planning: SampleSize  # the readers the margin needs, and the planned readers' power
    shortcut: dict[str, Any] | None  # the shortcut check on the pools (None: no pools chosen yet)
    fitted: int | None = None  # the default count lowered to what the pools fill, practice included


def study_preview(*, spec: StudySpec, fit: bool = False, pilot: planning.Pilot | None = None) -> Preview:
    """The builder's preview of a design. With `fit` (the count is the untouched default), a count the
    pools cannot fill becomes the most they fill, after the practice patches they give up."""
    fitted = None
    if fit:
        fits = study_plan(spec).max_items
        if 2 <= fits < spec.items_per_reader:
            spec, fitted = dataclasses.replace(spec, items_per_reader=fits), fits
    plan = study_plan(spec)
    synthetic = [d for arm in spec.arms for d in arm.datasets]
    shortcut = None
    if spec.real_datasets and synthetic:
        shortcut = shortcut_check_pools(
            tissue_class=spec.tissue_class,
            real_datasets=list(spec.real_datasets),
            synthetic_datasets=synthetic,
            jpeg_quality=spec.harmonise_jpeg_quality,
            stain=spec.stain_normalisation,
        )
    synthetic_parts = sum(arm.parts for arm in spec.arms)
    needed = sample_size(
        items=spec.items_per_reader,
        margin=spec.equivalence_margin,
        alpha=spec.alpha,
        planned_readers=spec.planned_readers or None,
        pilot=pilot,
        synthetic_share=synthetic_parts / max(spec.real_parts + synthetic_parts, 1),
    )
    return Preview(spec, plan, needed, shortcut, fitted)
