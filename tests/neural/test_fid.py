from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from scipy.linalg import hadamard
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from neural import fid


def random_inception_weights(path: Path) -> Path:
    """An Inception-v3 weights file of random weights, in the layout torch-fidelity loads."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    empty = path.with_name("empty.pth")
    torch.save({}, empty)
    torch.manual_seed(0)
    with mock.patch.object(torch.nn.Module, "load_state_dict", lambda self, *a, **k: None):
        model = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty)
        )
    torch.save(model.state_dict(), path)
    return path


def test_equal_covariances_give_the_squared_distance_of_the_means() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 1.5])
    assert fid.frechet_distance(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_diagonal_covariances_follow_the_closed_form() -> None:
    columns = hadamard(16)[:, 1:5].astype(float)  # orthogonal, zero-mean columns: diagonal sample covariance
    scale_1, scale_2 = np.array([1.0, 2.0, 0.5, 3.0]), np.array([2.0, 1.0, 1.5, 3.0])
    mean_1, mean_2 = np.array([0.0, 1.0, 0.0, 2.0]), np.array([1.0, 1.0, -1.0, 0.0])
    x, y = columns * scale_1 + mean_1, columns * scale_2 + mean_2
    var_1, var_2 = x.var(axis=0, ddof=1), y.var(axis=0, ddof=1)
    expected = np.sum((mean_1 - mean_2) ** 2) + np.sum((np.sqrt(var_1) - np.sqrt(var_2)) ** 2)
    assert fid.frechet_distance(x, y) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_is_torch_fidelitys_own() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 8)), rng.normal(loc=0.3, scale=1.2, size=(300, 8))
    own = fid_statistics_to_metric(
        fid_features_to_statistics(torch.as_tensor(x)), fid_features_to_statistics(torch.as_tensor(y)), False
    )["frechet_inception_distance"]
    assert fid.frechet_distance(x, y) == pytest.approx(own)


def test_missing_weights_say_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(fid.FidError, match="No Inception weights at .* set FID_WEIGHTS_PATH"):
        fid.weights_check(tmp_path / fid.WEIGHTS_FILE)


def test_corrupt_weights_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(fid.FidError, match="corrupt or not a weights file"):
        fid.weights_check(bad)


def test_report_end_to_end_with_random_weights_is_marked_non_standard(tmp_path: Path) -> None:
    weights = random_inception_weights(tmp_path / "random-inception.pth")
    rng = np.random.default_rng(2)
    real = rng.integers(0, 256, size=(8, 128, 128, 3), dtype=np.uint8)
    synthetic = np.clip(real.astype(int) + 40, 0, 255).astype(np.uint8)
    result = fid.fid_compute(real=real, synthetic=synthetic, weights_path=weights, device=torch.device("cpu"))
    assert np.isfinite(result.fid) and result.fid >= 0
    assert result.kid_mean is not None and result.kid_std is not None
    assert result.precision is not None and 0 <= result.precision <= 1
    assert result.protocol["standard_weights"] is False
    assert result.protocol["n_real"] == 8 and result.protocol["library"].startswith("torch-fidelity")
    assert any("NON-STANDARD" in note for note in result.protocol["notes"])
    few = real[:4]  # the fewest that still give precision and recall (k = 3)
    same = fid.fid_compute(real=few, synthetic=few, weights_path=weights, device=torch.device("cpu"))
    assert same.fid == pytest.approx(0.0, abs=1e-3)
