from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

from django.db.models import Count
from django.urls import reverse

from core.selectors import job_status
from gan.models import Dataset, Patch, SamplingRun, TrainingRun


def dataset_class_counts(*, dataset: Dataset) -> dict[str, int]:
    rows = dataset.patches.values("tissue_class").annotate(n=Count("id")).order_by("tissue_class")
    return {row["tissue_class"]: row["n"] for row in rows}


def datasets_overview(*, source: str | None = None) -> list[dict[str, Any]]:
    """Every dataset with its patch count per class, in two queries."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for row in Patch.objects.values("dataset_id", "tissue_class").annotate(n=Count("id")):
        counts[row["dataset_id"]][row["tissue_class"]] = row["n"]
    datasets = Dataset.objects.all() if source is None else Dataset.objects.filter(source=source)
    return [
        {
            "dataset": dataset,
            "classes": dict(sorted(counts[dataset.pk].items())),
            "total": sum(counts[dataset.pk].values()),
        }
        for dataset in datasets
    ]


def dataset_sample_patches(*, dataset: Dataset, per_class: int = 6) -> dict[str, list[Patch]]:
    sample: dict[str, list[Patch]] = {}
    for tissue_class in dataset_class_counts(dataset=dataset):
        sample[tissue_class] = list(
            dataset.patches.filter(tissue_class=tissue_class).order_by("id")[:per_class]
        )
    return sample


def training_runs() -> list[TrainingRun]:
    return list(TrainingRun.objects.select_related("dataset", "job").order_by("-created_at"))


def sampling_runs() -> list[SamplingRun]:
    return list(
        SamplingRun.objects.select_related("checkpoint__run", "dataset", "job").order_by("-created_at")
    )


def training_run_status(*, run: TrainingRun) -> dict[str, Any]:
    """What the run page polls: the job, the live figures, the latest grid, the checkpoints."""
    return {
        "job": job_status(job=run.job),
        "step": run.step,
        "steps": run.steps,
        "epoch": run.epoch,
        "loss_d_real": run.loss_d_real,
        "loss_d_fake": run.loss_d_fake,
        "loss_g": run.loss_g,
        "images_per_second": run.images_per_second,
        "seconds_left": run.seconds_left,
        "grid_step": run.grid_step,
        "grid_url": f"{reverse('gan:run_grid', args=[run.pk])}?step={run.grid_step}" if run.grid else None,
        "losses_url": f"{reverse('gan:run_losses', args=[run.pk])}?points={len(run.history)}",
        "checkpoints": [
            {
                "id": c.pk,
                "step": c.step,
                "size": c.size,
                "sample_url": f"{reverse('gan:sampling_new')}?checkpoint={c.pk}",
            }
            for c in run.checkpoints.order_by("step")
        ],
        "environment": {k: v for k, v in run.environment.items() if k != "starts"},
        "starts": run.environment.get("starts", []),
        "warnings": [w["message"] for w in run.health.get("warnings", [])],
    }


def checkpoint_warnings(*, run: TrainingRun, step: int) -> list[str]:
    """The training warnings a checkpoint at `step` inherits: those seen at or before it."""
    return [w["message"] for w in run.health.get("warnings", []) if w["step"] <= step]


class HistoryRow(NamedTuple):
    """One logged point of a training run's losses (stored as a list in `TrainingRun.history`)."""

    step: int
    loss_d_real: float
    loss_d_fake: float
    loss_g: float


def training_run_history(*, run: TrainingRun) -> list[HistoryRow]:
    return [HistoryRow(*row[:4]) for row in run.history]


SCALE_TOLERANCE = 1.25  # tissue read at up to 25% another scale than the classifier learnt it at


def _scale_caution(read_at: float | None, learnt_at: float | None) -> str:
    """Where both scales are known and differ: the classifier saw this tissue larger or smaller than it
    learnt it, so its figure is a rougher guide."""
    if not read_at or not learnt_at or max(read_at, learnt_at) / min(read_at, learnt_at) <= SCALE_TOLERANCE:
        return ""
    return (
        f" It read these patches at {read_at:.2g} µm per pixel and learnt at {learnt_at:.2g}: the tissue "
        "is at another scale than it was trained on, so take its figure as a rougher guide."
    )


def dataset_class_check_lines(*, dataset: Dataset, tissue_class: str | None = None) -> list[dict[str, Any]]:
    """A synthetic set's class check (`Dataset.class_check`, written by evaluation's check) in the words
    of a page: one line per declared class, and whether to look closer."""
    check = dataset.class_check
    if not check:
        return [{"text": "Not checked against its class yet.", "flagged": False}]
    if check.get("state") == "pending":
        return [{"text": "The class check is running.", "flagged": False}]
    lines = []
    for declared, entry in check.get("classes", {}).items():
        if tissue_class is not None and declared != tissue_class:
            continue
        if entry.get("unreadable"):
            lines.append({"text": f"{declared}: not checked: {entry['unreadable']}.", "flagged": False})
            continue
        if entry.get("classifier") is None:
            lines.append(
                {
                    "text": f"{declared}: no tissue classifier knows {declared} yet; train one "
                    "(Evaluation, tissue classifier) and the set is checked then.",
                    "flagged": False,
                }
            )
            continue
        others = ", ".join(f"{n} {c}" for c, n in entry["counts"].items() if c != declared)
        recall, accuracy = entry.get("classifier_recall"), entry.get("classifier_accuracy")
        if recall is not None:
            own = f", which calls {recall:.0%} of held-out real {declared} patches {declared}"
        elif accuracy is not None:
            own = f", which is right on {accuracy:.0%} of held-out real patches"
        else:
            own = ""
        lines.append(
            {
                "text": f"{entry['agreeing']} of {entry['checked']} classified {declared}"
                + (f" (others: {others})" if others else "")
                + f" by the tissue classifier trained on {entry['classifier_dataset']}{own}."
                + _scale_caution(entry.get("read_at_um_per_px"), entry.get("classifier_um_per_px")),
                "flagged": entry["flagged"],
            }
        )
    return lines or [{"text": f"No {tissue_class} patches were checked.", "flagged": False}]
