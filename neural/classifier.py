"""A small tissue classifier: a second opinion on synthetic patches that needs no downloaded weights.

No Django here. Trained on real patches, its penultimate features give a Frechet distance and a KID
between synthetic and real patches of a class (like FID, in a space learnt from this tissue), and its
predictions give the share of synthetic patches of class c that it assigns to c.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neural.data import PackedPatches
from neural.runtime import AUGMENTATIONS, augment


@dataclass(frozen=True)
class ClassifierConfig:
    classes: tuple[str, ...]
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    width: int = 32  # channels of the first block; doubled at each of the four blocks
    validation_share: float = 0.2
    flips: bool = True  # random flips and 90-degree rotations: tissue has no orientation
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.classes) < 2:
            raise ValueError("a classifier needs at least two classes")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.width < 1:
            raise ValueError("epochs, batch_size and width must be at least 1, lr above 0")
        if not 0 <= self.validation_share < 1:
            raise ValueError("validation_share must be in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"classes": list(self.classes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassifierConfig:
        return cls(**(data | {"classes": tuple(data["classes"])}))


class TissueClassifier(nn.Module):
    """Four conv blocks (conv-BN-ReLU, max-pool) and global average pooling: [N, 3, 128, 128] -> features."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for index in range(4):
            out = width * 2**index
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            channels = out
        self.body = nn.Sequential(*layers)
        self.feature_dim = channels
        self.head = nn.Linear(channels, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images).mean(dim=(2, 3))  # [N, feature_dim]: the penultimate layer

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))  # [N, classes] logits


def _to_input(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    # [N, 128, 128, 3] uint8 -> [N, 3, 128, 128] float in [-1, 1]
    batch = torch.from_numpy(np.array(pixels))  # a copy: memory-mapped packs are read-only
    return batch.to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1)


@dataclass(frozen=True)
class TrainedClassifier:
    state: dict[str, torch.Tensor]
    config: ClassifierConfig
    metrics: dict[str, Any]

    def model(self, device: torch.device) -> TissueClassifier:
        model = TissueClassifier(len(self.config.classes), self.config.width)
        model.load_state_dict(self.state)
        return model.to(device).eval()


def train_classifier(
    *,
    config: ClassifierConfig,
    data: PackedPatches,
    device: torch.device,
    progress_fn: Callable[[int, int, float], None] | None = None,
    abort_fn: Callable[[], bool] | None = None,
) -> TrainedClassifier:
    """Train on a seeded split of `data`; report held-out accuracy. `abort_fn` stops between epochs."""
    if tuple(data.classes) != tuple(config.classes):
        raise ValueError(f"data classes {data.classes} differ from the config's {config.classes}")
    data.require_every_class()
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(data))
    n_val = int(len(data) * config.validation_share)
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    torch.manual_seed(config.seed)
    model = TissueClassifier(len(config.classes), config.width).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()
    last_loss = float("nan")
    for epoch in range(config.epochs):
        if abort_fn is not None and abort_fn():
            break
        model.train()
        shuffled = train_idx[rng.permutation(len(train_idx))]
        losses = []
        for begin in range(0, len(shuffled), config.batch_size):
            idx = np.sort(shuffled[begin : begin + config.batch_size])
            images = _to_input(data.images[idx], device)
            if config.flips:
                images = augment(images, AUGMENTATIONS, generator)
            labels = torch.from_numpy(data.labels[idx]).to(device)
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        last_loss = float(np.mean(losses)) if losses else last_loss
        if progress_fn is not None:
            progress_fn(epoch + 1, config.epochs, last_loss)
    model.eval()
    metrics: dict[str, Any] = {
        "final_train_loss": last_loss,
        "seconds": time.perf_counter() - start,
        "n_train": len(train_idx),
        "n_validation": int(n_val),
    }
    if n_val:
        predicted = predict(model, data.images[val_idx], device)
        truth = data.labels[val_idx]
        metrics["validation_accuracy"] = float((predicted == truth).mean())
        # Each class's recall on the validation patches: what a class check of a set compares against.
        metrics["per_class_recall"] = {
            name: float((predicted[truth == i] == i).mean())
            for i, name in enumerate(config.classes)
            if (truth == i).any()
        }
    return TrainedClassifier({k: v.detach().cpu() for k, v in model.state_dict().items()}, config, metrics)


@torch.no_grad()
def features(
    model: TissueClassifier, images: np.ndarray, device: torch.device, batch: int = 128
) -> np.ndarray:
    """Penultimate features [N, feature_dim] of uint8 images [N, 128, 128, 3]."""
    parts = [
        model.features(_to_input(images[i : i + batch], device)).cpu().numpy()
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(parts) if parts else np.empty((0, model.feature_dim))


@torch.no_grad()
def predict(
    model: TissueClassifier, images: np.ndarray, device: torch.device, batch: int = 128
) -> np.ndarray:
    parts = [
        model(_to_input(images[i : i + batch], device)).argmax(1).cpu().numpy()
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


PRC_NEIGHBOURHOOD = 3  # k of the k-NN manifolds (Kynkaanniemi et al. 2019), torch-fidelity's default
BOOTSTRAP = 200


def _precision_recall(synthetic: np.ndarray, real: np.ndarray) -> tuple[float, float]:
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    k = min(PRC_NEIGHBOURHOOD, len(real) - 1, len(synthetic) - 1)
    precision, recall = calculate_precision_recall_full(
        torch.as_tensor(synthetic, dtype=torch.float32), torch.as_tensor(real, dtype=torch.float32), k
    )
    return float(precision), float(recall)


def _fidelity_with_intervals(
    synthetic: np.ndarray, real: np.ndarray, seed: int
) -> tuple[tuple[float, float], tuple[float, tuple[float, float]], tuple[float, tuple[float, float]]]:
    """The Frechet distance's and the k-NN precision's and recall's 95% percentile intervals from
    resampling both sets (`BOOTSTRAP` times); a duplicate drawn twice sits at distance 0 from itself,
    which the resampled k-NN radii shrink for, so the intervals of precision and recall are rough."""
    from neural.fid import frechet_distance

    rng = np.random.default_rng(seed)
    precision, recall = _precision_recall(synthetic, real)
    boots = []
    for _ in range(BOOTSTRAP):
        s = synthetic[rng.integers(0, len(synthetic), len(synthetic))]
        r = real[rng.integers(0, len(real), len(real))]
        boots.append((frechet_distance(s, r), *_precision_recall(s, r)))
    low, high = np.percentile(np.array(boots), [2.5, 97.5], axis=0)
    return (
        (float(low[0]), float(high[0])),
        (precision, (float(low[1]), float(high[1]))),
        (recall, (float(low[2]), float(high[2]))),
    )


def second_opinion(
    *,
    trained: TrainedClassifier,
    real: np.ndarray,
    synthetic: np.ndarray,
    tissue_class: str,
    device: torch.device,
) -> dict[str, Any]:
    """Frechet distance and KID in the classifier's feature space, and the share classified as the class."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    from neural.fid import frechet_distance

    if tissue_class not in trained.config.classes:
        raise ValueError(f"the classifier was not trained on class {tissue_class}")
    model = trained.model(device)
    real_features, synthetic_features = features(model, real, device), features(model, synthetic, device)
    subset = min(1000, len(real), len(synthetic))
    kid = kid_features_to_metric(
        torch.as_tensor(synthetic_features),
        torch.as_tensor(real_features),
        kid_subset_size=subset,
        verbose=False,
    )
    target = trained.config.classes.index(tissue_class)
    fd, precision, recall = _fidelity_with_intervals(synthetic_features, real_features, seed=0)
    return {
        "frechet_distance": frechet_distance(synthetic_features, real_features),
        "frechet_distance_ci": fd,
        "precision": precision[0],
        "precision_ci": precision[1],
        "recall": recall[0],
        "recall_ci": recall[1],
        "prc_neighbourhood": PRC_NEIGHBOURHOOD,
        "bootstrap": BOOTSTRAP,
        "kid_mean": float(kid["kernel_inception_distance_mean"]),
        "kid_std": float(kid["kernel_inception_distance_std"]),
        "share_assigned_to_class": float((predict(model, synthetic, device) == target).mean()),
        "share_of_real_assigned_to_class": float((predict(model, real, device) == target).mean()),
        "feature_dim": model.feature_dim,
        "n_real": len(real),
        "n_synthetic": len(synthetic),
    }
