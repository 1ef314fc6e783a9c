"""The copying check of a synthetic set against the real patches its generator learnt from, as a job."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis import copying
from core.jobs import job_start
from core.models import Job
from core.roles import UserLike
from evaluation import jobs
from evaluation.models import CopyingCheck
from evaluation.selectors import classifier_for
from evaluation.services.classifier import classifier_load
from evaluation.services.common import EvaluationError, patches_load
from gan.imaging import PATCH_SIZE
from gan.models import Dataset, Source, TrainingRun
from gan.services.training import training_data_pack

if TYPE_CHECKING:
    from core.jobs import JobContext

GALLERY = 48  # pairs kept per space for the side-by-side gallery (the closest first)
CHUNK = 4096  # reference patches decoded and featurised at a time


def copying_check_start(
    *,
    synthetic_dataset: Dataset,
    reference_dataset: Dataset | None = None,
    created_by: UserLike | None = None,
    device: str = "auto",
    enqueue: bool = True,
) -> CopyingCheck:
    """Check what can be checked, then queue the check. The reference defaults to the dataset the
    set's generator was trained on (sampling runs record it); an imported set needs it named."""
    if synthetic_dataset.source != Source.SYNTHETIC:
        raise EvaluationError(f"{synthetic_dataset.name} holds real patches: check a synthetic set.")
    if reference_dataset is None:
        run = TrainingRun.objects.filter(pk=synthetic_dataset.provenance.get("training_run")).first()
        if run is None:
            raise EvaluationError(
                f"{synthetic_dataset.name} was not sampled here: name the real dataset its generator "
                "learnt from."
            )
        reference_dataset = run.dataset
    if reference_dataset.source != Source.REAL:
        raise EvaluationError(f"{reference_dataset.name} is not a real dataset.")
    if min(synthetic_dataset.patch_size, reference_dataset.patch_size) < PATCH_SIZE:
        raise EvaluationError(
            f"The copying check compares {PATCH_SIZE} px patches (larger ones downsampled, smaller ones "
            "never upsampled): one of these sets is smaller."
        )
    classes = sorted(set(synthetic_dataset.patches.values_list("tissue_class", flat=True)))
    if not classes:
        raise EvaluationError(f"{synthetic_dataset.name} holds no patches yet.")
    present = set(
        reference_dataset.patches.filter(tissue_class__in=classes).values_list("tissue_class", flat=True)
    )
    if missing := [c for c in classes if c not in present]:
        raise EvaluationError(
            f"{reference_dataset.name} has no {', '.join(missing)} patches to compare with."
        )
    record = CopyingCheck(synthetic_dataset=synthetic_dataset, reference_dataset=reference_dataset)
    title = f"Copying check: {synthetic_dataset.name} against {reference_dataset.name}"
    return job_start(
        kind=jobs.COPYING, record=record, title=title, created_by=created_by, device=device, enqueue=enqueue
    )


def copying_check_job(job: Job, context: JobContext) -> dict[str, Any]:
    """The body of the copying task: features of both sets, nearest neighbours, the rule, the gallery."""
    check = CopyingCheck.objects.select_related("synthetic_dataset", "reference_dataset").get(job=job)
    start = time.perf_counter()
    synthetic_rows = list(
        check.synthetic_dataset.patches.order_by("id").values_list("id", "image", "tissue_class")
    )
    classes = tuple(sorted({row[2] for row in synthetic_rows}))
    context.progress(0.05, f"Loading {len(synthetic_rows):,} synthetic patches", force=True)
    synthetic = patches_load([row[1] for row in synthetic_rows])
    pack = training_data_pack(dataset=check.reference_dataset, classes=classes, size=PATCH_SIZE)
    reference_ids = list(
        check.reference_dataset.patches.filter(tissue_class__in=classes)
        .order_by("id")
        .values_list("id", flat=True)
    )
    context.progress(0.2, f"Features of {len(reference_ids):,} training patches", force=True)
    spaces: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "pixels": (
            copying.pixel_features(synthetic),
            np.concatenate(
                [copying.pixel_features(np.asarray(pack.images[s])) for s in copying.chunks(len(pack), CHUNK)]
            ),
        )
    }
    classifier = classifier_for(dataset=check.reference_dataset, tissue_class=classes[0])
    if classifier is not None:
        from neural.classifier import features
        from neural.runtime import pick_device

        device = pick_device(job.params.get("device", "auto"))
        model = classifier_load(classifier).model(device)
        context.progress(0.5, "Features of the tissue classifier", force=True)
        spaces["classifier"] = (
            features(model, synthetic, device),
            np.concatenate(
                [
                    features(model, np.asarray(pack.images[s]), device)
                    for s in copying.chunks(len(pack), CHUNK)
                ]
            ),
        )
    results = {}
    for name, (synthetic_features, reference_features) in spaces.items():
        context.progress(0.8, f"Nearest training patches ({name})", force=True)
        space = copying.check_space(
            name,
            synthetic_features,
            reference_features,
            synthetic_ids=[row[0] for row in synthetic_rows],
            training_ids=reference_ids,
        ).as_dict()
        space["flagged_ids"] = [pair["synthetic"] for pair in space["flagged"]]
        space["flagged"] = space["flagged"][:GALLERY]
        space["nearest"] = space["nearest"][:GALLERY]
        results[name] = space
    check.results = {
        "rule": copying.RULE,
        "spaces": results,
        "classifier": classifier.pk if classifier is not None else None,
        "seconds": round(time.perf_counter() - start, 1),
    }
    check.save(update_fields=["results"])
    return {name: {"flagged": r["n_flagged"], "of": r["n_synthetic"]} for name, r in results.items()}
