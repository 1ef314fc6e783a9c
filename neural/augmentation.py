"""Does adding synthetic patches help a tissue classifier? The experiment's arms and figures. No Django.

Arms, each trained with every seed and evaluated on the same real test patches:
- baseline: all real training patches;
- scarce: real class c cut to a fraction (the scarcity the paper's motivation speaks of);
- scarce + k synthetic: the scarce set plus k synthetic patches of c, for each amount k;
- synthetic only: real patches of every other class, and only synthetic patches for c.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import stats as scipy_stats
from statsmodels.stats.contingency_tables import mcnemar

from neural.classifier import ClassifierConfig, predict, train_classifier
from neural.data import PackedPatches


@dataclass(frozen=True)
class Arm:
    name: str
    amount: int | None  # synthetic patches of c added (None: none)
    scarce: bool
    synthetic_only: bool = False


def arms_for(amounts: Sequence[int]) -> list[Arm]:
    arms = [Arm("baseline", None, scarce=False), Arm("scarce", None, scarce=True)]
    arms += [Arm(f"scarce + {k} synthetic", k, scarce=True) for k in amounts if k > 0]
    arms.append(Arm("synthetic only for c", max(amounts), scarce=False, synthetic_only=True))
    return arms


def _subset(data: PackedPatches, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    indices = np.sort(indices)
    return np.asarray(data.images[indices]), np.asarray(data.labels[indices])


def arm_training_set(
    arm: Arm, *, train: PackedPatches, synthetic: np.ndarray, class_index: int, fraction: float, seed: int
) -> PackedPatches:
    """The arm's training set: real patches (class c cut or replaced) plus synthetic patches of c."""
    rng = np.random.default_rng([seed, 11])
    labels = np.asarray(train.labels)
    of_c, others = np.flatnonzero(labels == class_index), np.flatnonzero(labels != class_index)
    if arm.synthetic_only:
        keep = others
    elif arm.scarce:
        n_keep = max(1, round(len(of_c) * fraction))
        keep = np.concatenate([others, rng.choice(of_c, n_keep, replace=False)])
    else:
        keep = np.arange(len(labels))
    images, kept_labels = _subset(train, keep)
    if arm.amount:
        chosen = np.sort(rng.choice(len(synthetic), arm.amount, replace=False))
        images = np.concatenate([images, synthetic[chosen]])
        kept_labels = np.concatenate([kept_labels, np.full(arm.amount, class_index)])
    return PackedPatches.from_arrays(images, kept_labels, train.classes)


def macro_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    # The usual definition (sklearn's f1_score average="macro"); sklearn is not a dependency.
    scores = []
    for c in range(n_classes):
        tp = np.sum((predicted == c) & (truth == c))
        fp, fn = np.sum((predicted == c) & (truth != c)), np.sum((predicted != c) & (truth == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def interval(values: Sequence[float]) -> tuple[float | None, tuple[float, float] | None]:
    """Mean and 95% t-interval over seeds, clipped to 0-1 (every figure here is a proportion: a t
    interval over few seeds can otherwise print -0.025); no interval from one seed."""
    if not values:
        return None, None
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, None
    half = float(scipy_stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))
    return mean, (max(mean - half, 0.0), min(mean + half, 1.0))


@dataclass
class ArmResult:
    arm: str
    amount: int | None
    n_train: int
    accuracy: list[float] = field(default_factory=list)  # one per seed
    macro_f1: list[float] = field(default_factory=list)
    recall_c: list[float] = field(default_factory=list)
    correct: list[np.ndarray] = field(default_factory=list)  # per seed: which test patches were right

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"arm": self.arm, "amount": self.amount, "n_train": self.n_train}
        for name in ("accuracy", "macro_f1", "recall_c"):
            values = getattr(self, name)
            mean, ci = interval(values)
            out[name] = {"per_seed": values, "mean": mean, "ci95": ci}
        return out


def mcnemar_against(baseline: ArmResult, other: ArmResult) -> dict[str, Any]:
    """Exact McNemar test on the same test patches, over every (seed, patch) pair."""
    a, b = np.concatenate(baseline.correct), np.concatenate(other.correct)
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    result = mcnemar(table, exact=True)
    return {"table": table, "p_value": float(result.pvalue), "discordant": table[0][1] + table[1][0]}


def run_experiment(
    *,
    train: PackedPatches,
    test: PackedPatches,
    synthetic: np.ndarray,
    tissue_class: str,
    amounts: Sequence[int],
    fraction: float,
    seeds: Sequence[int],
    classifier: dict[str, Any],
    device: torch.device,
    progress_fn: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    class_index = train.classes.index(tissue_class)
    arms = arms_for(amounts)
    results: list[ArmResult] = []
    total, done = len(arms) * len(seeds), 0
    for arm in arms:
        result: ArmResult | None = None
        for seed in seeds:
            data = arm_training_set(
                arm, train=train, synthetic=synthetic, class_index=class_index, fraction=fraction, seed=seed
            )
            config = ClassifierConfig(classes=train.classes, seed=seed, **classifier)
            trained = train_classifier(config=config, data=data, device=device)
            model = trained.model(device)
            predicted = predict(model, np.asarray(test.images), device)
            truth = np.asarray(test.labels)
            if result is None:
                result = ArmResult(arm.name, arm.amount, len(data))
            result.accuracy.append(float((predicted == truth).mean()))
            result.macro_f1.append(macro_f1(truth, predicted, len(train.classes)))
            of_c = truth == class_index
            result.recall_c.append(float((predicted[of_c] == class_index).mean()))
            result.correct.append(predicted == truth)
            done += 1
            if progress_fn is not None:
                progress_fn(done, total, f"{arm.name}, seed {seed}")
        assert result is not None
        results.append(result)
    baseline = results[0]
    arms_out = []
    for result in results:
        summary = result.summary()
        summary["mcnemar_vs_baseline"] = None if result is baseline else mcnemar_against(baseline, result)
        arms_out.append(summary)
    return {"arms": arms_out, "test_size": len(test), "class_counts_test": test.class_counts()}
