"""The shortcut check: can real and synthetic patches be told apart by low-level features alone?

Readers (and FID) may separate the two by colour or by resampling and compression traces rather than
by morphology: real NCT-CRC-HE-100K patches are Macenko-normalised per class, JPEG-compressed and
downsampled from 224 px, while generated ones are made at 128 px. Before a study opens, a classifier
that sees only such features is trained to separate the study's real from its synthetic patches, with
cross-validation; its ROC AUC says how much of a shortcut there is. No Django here.

Feature families (each also fitted alone, to say which one separates):
- colour (RGB): per-channel mean, standard deviation, skewness and an 8-bin histogram;
- colour (HSV): hue, saturation and value moments and 8-bin hue and saturation histograms;
- stain (HED): haematoxylin, eosin and DAB densities by colour deconvolution (Ruifrok & Johnston, as
  scikit-image implements it), their moments;
- power spectrum: the luminance spectrum's share of power in 8 radial bands (log);
- JPEG/resampling traces: 8x8 blockiness (differences across block borders over those inside), the
  energy of the Laplacian, and the power at the highest frequencies.

The rule, fixed here and quoted where the figure is shown: a warning when the cross-validated AUC is at
least `WARN_AUC` and its 95% interval lies above 0.5.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats
from skimage.color import rgb2hed, rgb2hsv
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

WARN_AUC = 0.65
# A shortcut this strong makes the study a test of the shortcut: the builder asks for an explicit yes.
CONFIRM_AUC = 0.95
_COLOUR = (
    "normalise the stain colour of every item alike (the builder's Reinhard normalisation, applied to real "
    "and synthetic patches the same) or choose pools stained alike; JPEG re-encoding cannot remove a colour "
    "difference."
)
_TRACES = (
    "harmonise the final encoding (the same JPEG re-encoding of every item) or choose pools made at the "
    "same resolution."
)
ADVICE = {
    "colour (RGB)": _COLOUR,
    "colour (HSV)": _COLOUR,
    "stain (HED)": _COLOUR,
    "power spectrum": _TRACES,
    "JPEG/resampling traces": _TRACES,
}
FOLDS = 5
BOOTSTRAP = 1000
RULE = (
    f"A logistic regression on low-level features only ({FOLDS}-fold cross-validated) tries to tell the "
    f"study's real patches from its synthetic ones; a warning when its ROC AUC is at least {WARN_AUC} "
    "and its 95% bootstrap interval lies above 0.5 (0.5: the features carry no shortcut)."
)


def _moments(values: np.ndarray) -> np.ndarray:
    """[N, P, C] -> [N, 3C]: mean, standard deviation and skewness of each channel."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # flat patches: skewness undefined, set to 0
        skew = np.nan_to_num(scipy_stats.skew(values, axis=1))
    return np.concatenate([values.mean(axis=1), values.std(axis=1), skew], axis=1)


def _histograms(values: np.ndarray, bins: int, low: float, high: float) -> np.ndarray:
    """[N, P, C] -> [N, C*bins]: each channel's share of pixels per bin."""
    n, p, c = values.shape
    edges = np.linspace(low, high, bins + 1)[1:-1]
    index = np.searchsorted(edges, values)  # [N, P, C] bin of every pixel
    counts = np.zeros((n, c, bins))
    for channel in range(c):
        for row in range(n):
            counts[row, channel] = np.bincount(index[row, :, channel], minlength=bins)
    return (counts / p).reshape(n, c * bins)


def colour_rgb(images: np.ndarray) -> np.ndarray:
    pixels = images.reshape(len(images), -1, 3).astype(np.float64) / 255.0
    return np.concatenate([_moments(pixels), _histograms(pixels, 8, 0.0, 1.0)], axis=1)


def colour_hsv(images: np.ndarray) -> np.ndarray:
    hsv = rgb2hsv(images).reshape(len(images), -1, 3)
    return np.concatenate([_moments(hsv), _histograms(hsv[:, :, :2], 8, 0.0, 1.0)], axis=1)


def stain_hed(images: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hed = rgb2hed(images).reshape(len(images), -1, 3)
    return _moments(hed)


def _luminance(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0  # [N, H, W]


def power_spectrum(images: np.ndarray, bands: int = 8) -> np.ndarray:
    grey = _luminance(images)
    grey -= grey.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fftshift(np.fft.fft2(grey), axes=(1, 2))) ** 2
    h, w = grey.shape[1:]
    yy, xx = np.mgrid[:h, :w]
    radius = np.hypot(yy - h / 2, xx - w / 2) / (min(h, w) / 2)  # 0 at DC, 1 at the edge's Nyquist
    band = np.minimum((radius * bands).astype(int), bands - 1)
    totals = np.stack([power[:, band == b].sum(axis=1) for b in range(bands)], axis=1)
    return np.log(totals / np.maximum(totals.sum(axis=1, keepdims=True), 1e-12) + 1e-12)


def traces(images: np.ndarray) -> np.ndarray:
    grey = _luminance(images)
    dx = np.abs(np.diff(grey, axis=2))  # [N, H, W-1]: between column j and j+1
    dy = np.abs(np.diff(grey, axis=1))
    border_x = dx[:, :, 7::8].mean(axis=(1, 2))
    border_y = dy[:, 7::8, :].mean(axis=(1, 2))
    inside_x = np.delete(dx, np.s_[7::8], axis=2).mean(axis=(1, 2))
    inside_y = np.delete(dy, np.s_[7::8], axis=1).mean(axis=(1, 2))
    lap = (
        grey[:, 1:-1, 1:-1] * 4
        - grey[:, :-2, 1:-1]
        - grey[:, 2:, 1:-1]
        - grey[:, 1:-1, :-2]
        - grey[:, 1:-1, 2:]
    )
    highest = power_spectrum(images, bands=16)[:, -1]
    eps = 1e-9
    return np.stack(
        [
            np.log((border_x + eps) / (inside_x + eps)),
            np.log((border_y + eps) / (inside_y + eps)),
            np.log(lap.var(axis=(1, 2)) + eps),
            highest,
        ],
        axis=1,
    )


FAMILIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "colour (RGB)": colour_rgb,
    "colour (HSV)": colour_hsv,
    "stain (HED)": stain_hed,
    "power spectrum": power_spectrum,
    "JPEG/resampling traces": traces,
}


@dataclass(frozen=True)
class AUC:
    value: float
    low: float
    high: float


@dataclass
class ShortcutResult:
    n_real: int
    n_synthetic: int
    auc: AUC | None  # all families together
    families: dict[str, AUC] = field(default_factory=dict)
    warning: str = ""
    reason: str = ""  # why there is no figure

    @property
    def severe(self) -> bool:
        """So strong that the study would test the shortcut rather than the tissue (`CONFIRM_AUC`): all
        families together, or one alone (on a small pool the joint model, with many more features than
        patches, can score below its best family: that family alone still tells the sets apart)."""
        every = ([self.auc] if self.auc is not None else []) + list(self.families.values())
        return any(auc.value >= CONFIRM_AUC and auc.low > 0.5 for auc in every)

    @property
    def strongest(self) -> str | None:
        return max(self.families, key=lambda f: self.families[f].value) if self.families else None


def _auc(truth: np.ndarray, score: np.ndarray) -> float:
    return float(
        scipy_stats.mannwhitneyu(score[truth], score[~truth]).statistic / (truth.sum() * (~truth).sum())
    )


def _cv_auc(features: np.ndarray, truth: np.ndarray, seed: int) -> AUC:
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    folds = StratifiedKFold(
        n_splits=min(FOLDS, int(truth.sum()), int((~truth).sum())), shuffle=True, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant features in a fold: scaled to zero, harmless
        score = cross_val_predict(model, features, truth, cv=folds, method="decision_function")
    value = _auc(truth, score)
    # Cases resampled within each class, all resamples ranked at once; the folds are not refitted (the
    # usual, slightly narrow, choice for a cross-validated AUC).
    rng = np.random.default_rng(seed)
    pos, neg = score[truth], score[~truth]
    drawn = np.concatenate(
        [
            pos[rng.integers(0, pos.size, (BOOTSTRAP, pos.size))],
            neg[rng.integers(0, neg.size, (BOOTSTRAP, neg.size))],
        ],
        axis=1,
    )
    ranks = scipy_stats.rankdata(drawn, axis=1)
    boot = (ranks[:, : pos.size].sum(axis=1) - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size)
    low, high = np.percentile(boot, [2.5, 97.5])
    return AUC(value, float(low), float(high))


def shortcut_check(real: np.ndarray, synthetic: np.ndarray, seed: int = 0) -> ShortcutResult:
    """`real`, `synthetic`: [N, H, W, 3] uint8 patches of one size."""
    n_real, n_synthetic = len(real), len(synthetic)
    if min(n_real, n_synthetic) < FOLDS:
        return ShortcutResult(
            n_real,
            n_synthetic,
            None,
            reason=f"the check needs at least {FOLDS} real and {FOLDS} synthetic patches",
        )
    images = np.concatenate([real, synthetic])
    truth = np.r_[np.zeros(n_real, bool), np.ones(n_synthetic, bool)]
    blocks = {name: extract(images) for name, extract in FAMILIES.items()}
    families = {name: _cv_auc(block, truth, seed) for name, block in blocks.items()}
    overall = _cv_auc(np.concatenate(list(blocks.values()), axis=1), truth, seed)
    result = ShortcutResult(n_real, n_synthetic, overall, families)
    if overall.value >= WARN_AUC and overall.low > 0.5:
        family = result.strongest
        assert family is not None
        result.warning = (
            f"Low-level features alone tell these real and synthetic patches apart (cross-validated AUC "
            f"{overall.value:.2f}, 95% CI {overall.low:.2f} to {overall.high:.2f}); {family} separates them "
            f"most (AUC {families[family].value:.2f}). Readers may answer from that instead of the tissue: "
            f"{ADVICE[family]}"
        )
    return result
