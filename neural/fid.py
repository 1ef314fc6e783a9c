"""FID, KID and precision/recall of synthetic against real patches, with torch-fidelity. No Django.

The standard FID uses Inception-v3 pool3 features with the 2015-12-05 TensorFlow weights, as
torch-fidelity implements them (its tests match the original TensorFlow code). The weights file is
given by path: machines without internet keep a local copy. Images go in as uint8 [3, 128, 128]
tensors; torch-fidelity resizes them to 299x299 inside the feature extractor, as the reference does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

STANDARD_WEIGHTS_SHA256_PREFIX = "6726825d"  # torch-hub convention: the file name carries it
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


class FidError(RuntimeError):
    """A report that cannot be made; the message says why and how to fix it."""


class Uint8Images(Dataset[torch.Tensor]):
    """[N, 128, 128, 3] uint8 array -> items of [3, 128, 128] uint8 tensors, as torch-fidelity wants."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.images[index])).permute(2, 0, 1)


def frechet_distance(features_1: np.ndarray, features_2: np.ndarray) -> float:
    """The Frechet distance of two feature sets, by torch-fidelity's own statistics and metric."""
    stats_1 = fid_features_to_statistics(torch.as_tensor(features_1, dtype=torch.float64))
    stats_2 = fid_features_to_statistics(torch.as_tensor(features_2, dtype=torch.float64))
    return float(fid_statistics_to_metric(stats_1, stats_2, verbose=False)["frechet_inception_distance"])


def weights_check(path: Path) -> tuple[str, bool]:
    """The weights file's SHA-256 and whether it is the standard file; FidError if missing or unreadable."""
    if not path.exists():
        raise FidError(
            f"No Inception weights at {path}, and this machine cannot download them. Download "
            f"{URL_INCEPTION_V3} on a machine with internet, copy it here and set FID_WEIGHTS_PATH "
            "to its path."
        )
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()  # streamed: the file is about 91 MB
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FidError(
            f"The Inception weights file {path} is corrupt or not a weights file ({exc})."
        ) from None
    if not isinstance(state, dict) or "Conv2d_1a_3x3.conv.weight" not in state:
        raise FidError(f"{path} is not an Inception-v3 weights file for torch-fidelity.")
    return digest, digest.startswith(STANDARD_WEIGHTS_SHA256_PREFIX)


@dataclass(frozen=True)
class FidResult:
    fid: float
    kid_mean: float | None
    kid_std: float | None
    precision: float | None
    recall: float | None
    protocol: dict[str, Any]


def fid_compute(
    *,
    real: np.ndarray,
    synthetic: np.ndarray,
    weights_path: Path,
    device: torch.device,
    batch_size: int = 64,
) -> FidResult:
    """FID, KID (mean, std) and, where the sizes allow, precision and recall."""
    n_real, n_synthetic = int(real.shape[0]), int(synthetic.shape[0])
    if n_real < 2 or n_synthetic < 2:
        raise FidError(
            f"FID needs at least 2 images on each side, got {n_real} real and {n_synthetic} synthetic"
        )
    digest, standard = weights_check(weights_path)
    kid_subset = min(1000, n_real, n_synthetic)
    with_prc = min(n_real, n_synthetic) > 3  # k-NN radius with k = 3 needs more than 3 points
    try:
        metrics = torch_fidelity.calculate_metrics(
            input1=Uint8Images(synthetic),
            input2=Uint8Images(real),
            fid=True,
            kid=True,
            prc=with_prc,
            # One extractor for all three metrics: torch-fidelity's default for precision/recall is
            # VGG-16, whose weights would be a second download.
            feature_extractor="inception-v3-compat",
            feature_layer_fid="2048",
            feature_layer_kid="2048",
            feature_layer_prc="2048",
            kid_subset_size=kid_subset,
            feature_extractor_weights_path=str(weights_path),
            cuda=device.type == "cuda",
            batch_size=batch_size,
            cache=False,
            verbose=False,
            save_cpu_ram=True,
        )
    except (RuntimeError, ValueError) as exc:
        raise FidError(f"torch-fidelity failed: {exc}") from None
    notes = []
    if min(n_real, n_synthetic) <= 2048:
        notes.append(
            "FID is biased at small N: with 2,048 or fewer images the 2,048-dimensional covariance is not of "
            "full rank. KID is unbiased and stands beside it."
        )
    if not standard:
        notes.append(
            "NON-STANDARD: the Inception weights are not the standard 2015-12-05 file; not comparable."
        )
    protocol = {
        "library": f"torch-fidelity {torch_fidelity.__version__}",
        "feature_extractor": "inception-v3-compat, pool3 (2048) for FID, KID and precision/recall (k = 3)",
        "weights_file": weights_path.name,
        "weights_sha256": digest,
        "standard_weights": standard,
        "n_real": n_real,
        "n_synthetic": n_synthetic,
        "kid_subsets": 100,
        "kid_subset_size": kid_subset,
        "resizing": "128x128 uint8 PNG patches, resized to 299x299 inside the feature extractor (bilinear, "
        "as the TensorFlow reference)",
        "device": str(device),
        "notes": notes,
    }
    return FidResult(
        fid=float(metrics["frechet_inception_distance"]),
        kid_mean=float(metrics["kernel_inception_distance_mean"]),
        kid_std=float(metrics["kernel_inception_distance_std"]),
        precision=float(metrics["precision"]) if with_prc else None,
        recall=float(metrics["recall"]) if with_prc else None,
        protocol=protocol,
    )
