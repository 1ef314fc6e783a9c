"""The training configuration: the paper's values as defaults, every open choice a named field.

No Django here. A config is stored with its run and inside every checkpoint (`asdict`), and is
rebuilt from that dict with `TrainingConfig.from_dict`, which validates every field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# The tissue classes of NCT-CRC-HE-100K (the paper's data): the ones the networks condition on, and
# the folders an import recognises (`gan.sources`). BACK (background) is left out of training by default.
KNOWN_CLASSES = ("ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM")
DEFAULT_CLASSES = tuple(c for c in KNOWN_CLASSES if c != "BACK")


D_LABEL_MODES = ("onehot_channels", "projection")
G_LAST_LAYERS = ("conv7", "conv3", "conv1")
WEIGHT_INITS = ("dcgan", "pytorch")
AUGMENTATIONS = ("hflip", "vflip", "rot90")
DIFF_AUGMENTATIONS = ("color", "translation", "cutout")
G_UPSAMPLES = ("transposed", "nearest")
ARCHITECTURES = ("paper", "texture")
LOSSES = ("bce", "hinge")
PRECISIONS = ("bf16", "fp32")


class ConfigError(ValueError):
    """A config that cannot be trained; the message names the field."""


@dataclass(frozen=True)
class TrainingConfig:
    # --- The paper -----------------------------------------------------------------------------
    classes: tuple[str, ...] = DEFAULT_CLASSES
    latent_dim: int = 1500
    image_size: int = 128  # 4x4 doubled five times
    g_filters: int = 128  # every transposed convolution of the generator
    d_filters: int = 128  # every convolution of the discriminator
    leaky_slope: float = 0.2
    batch_size: int = 125
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999  # the paper names beta1 only; Adam's default
    # --- Choices the paper leaves open ---------------------------------------------------------
    # How the label enters D: as one constant channel per class next to RGB, or a projection
    # discriminator's inner product of a class embedding with D's features (Miyato & Koyama 2018).
    d_label_mode: str = "onehot_channels"
    # G's last layer after the five transposed convolutions: a same-size convolution to RGB, then tanh.
    g_last_layer: str = "conv7"
    weight_init: str = "dcgan"  # N(0, 0.02) weights, as in DCGAN; or PyTorch's defaults
    label_smoothing: float = 0.0  # one-sided: real targets become 1 - label_smoothing
    spectral_norm: bool = False  # on D's layers
    d_dropout: float = 0.0  # before D's final linear layer
    augmentations: tuple[str, ...] = ()  # label-preserving flips/rotations of real patches
    # DiffAugment (Zhao et al. 2020) on everything D sees, real and generated: for small training sets.
    diffaugment: tuple[str, ...] = ()
    # How G doubles its maps: the paper's transposed convolutions, or nearest-neighbour upsampling then a
    # 3x3 convolution (no checkerboard artefacts; Odena et al. 2016).
    g_upsample: str = "transposed"
    # The networks: the paper's (a latent vector to 128x128; D's one logit per patch), or a texture GAN
    # for small training sets (Jetchev et al. 2016; SinGAN): a fully convolutional G from a map of noise
    # (`latent_dim` channels at 1/16 of the side; reflection padding, nearest upsampling, batch norm) and
    # a patch D (one logit per region of about 46 px), which learn local tissue texture from few patches.
    architecture: str = "paper"
    # "texture" only: train on random crops of this side (a multiple of 16; 0: the whole patch).
    train_crop: int = 0
    loss: str = "bce"  # the paper's binary cross-entropy, or the hinge loss (Lim & Ye 2017)
    # 0: off. Otherwise the samples (grids, sampling runs) come from an exponential moving average of G's
    # weights with this decay (Karras et al. 2018), which evens out the oscillation of GAN training.
    g_ema: float = 0.0
    # --- Length, precision, bookkeeping --------------------------------------------------------
    steps: int = 20_000
    seed: int = 0
    precision: str = "bf16"  # bf16 autocast where the device has fast bf16, fp32 otherwise
    channels_last: bool = True
    compile: bool = False  # torch.compile (CUDA only)
    deterministic: bool = False  # deterministic algorithms: bitwise-reproducible runs, slower
    checkpoint_every: int = 1000
    sample_every: int = 500
    log_every: int = 10
    grid_per_class: int = 8
    demo: bool = False  # a small configuration for a CPU demo, not the paper's model
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept with the run

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def require(condition: bool, message: str) -> None:
            if not condition:
                raise ConfigError(message)

        require(len(self.classes) >= 1, "classes: at least one tissue class is needed")
        unknown = [c for c in self.classes if c not in KNOWN_CLASSES]
        require(
            not unknown,
            f"classes: unknown class(es) {', '.join(unknown)} (known: {', '.join(KNOWN_CLASSES)})",
        )
        require(len(set(self.classes)) == len(self.classes), "classes: a class is listed twice")
        require(self.latent_dim >= 1, f"latent_dim must be at least 1, got {self.latent_dim}")
        require(
            self.image_size == 128, f"image_size must be 128 (4x4 doubled five times), got {self.image_size}"
        )
        require(self.g_filters >= 1, f"g_filters must be at least 1, got {self.g_filters}")
        require(self.d_filters >= 1, f"d_filters must be at least 1, got {self.d_filters}")
        require(0 <= self.leaky_slope < 1, f"leaky_slope must be in [0, 1), got {self.leaky_slope}")
        require(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        require(self.lr_g > 0, f"lr_g must be > 0, got {self.lr_g}")
        require(self.lr_d > 0, f"lr_d must be > 0, got {self.lr_d}")
        require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "beta1 and beta2 must be in [0, 1)")
        require(self.d_label_mode in D_LABEL_MODES, f"d_label_mode must be one of {', '.join(D_LABEL_MODES)}")
        require(self.g_last_layer in G_LAST_LAYERS, f"g_last_layer must be one of {', '.join(G_LAST_LAYERS)}")
        require(self.weight_init in WEIGHT_INITS, f"weight_init must be one of {', '.join(WEIGHT_INITS)}")
        require(
            0 <= self.label_smoothing < 0.5,
            f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}",
        )
        require(0 <= self.d_dropout < 1, f"d_dropout must be in [0, 1), got {self.d_dropout}")
        bad_diff = [a for a in self.diffaugment if a not in DIFF_AUGMENTATIONS]
        require(
            not bad_diff,
            f"diffaugment: unknown {', '.join(bad_diff)} (known: {', '.join(DIFF_AUGMENTATIONS)})",
        )
        require(self.g_upsample in G_UPSAMPLES, f"g_upsample must be one of {', '.join(G_UPSAMPLES)}")
        require(self.architecture in ARCHITECTURES, f"architecture must be one of {', '.join(ARCHITECTURES)}")
        require(self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}")
        require(0 <= self.g_ema < 1, f"g_ema must be in [0, 1), got {self.g_ema}")
        require(
            self.train_crop == 0
            or (
                self.architecture == "texture" and 32 <= self.train_crop <= 128 and self.train_crop % 16 == 0
            ),
            f"train_crop must be 0, or a multiple of 16 from 32 to 128 with the texture architecture, "
            f"got {self.train_crop}",
        )
        bad_aug = [a for a in self.augmentations if a not in AUGMENTATIONS]
        require(
            not bad_aug, f"augmentations: unknown {', '.join(bad_aug)} (known: {', '.join(AUGMENTATIONS)})"
        )
        require(self.steps >= 1, f"steps must be at least 1, got {self.steps}")
        require(self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}")
        for name in ("checkpoint_every", "sample_every", "log_every", "grid_per_class"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["classes"] = list(self.classes)
        data["augmentations"] = list(self.augmentations)
        data["diffaugment"] = list(self.diffaugment)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        values = dict(data)
        for name in ("classes", "augmentations", "diffaugment"):
            if name in values:
                if isinstance(values[name], str):
                    values[name] = [v for v in values[name].split(",") if v.strip()]
                values[name] = tuple(
                    str(v).strip().upper() if name == "classes" else str(v).strip() for v in values[name]
                )
        defaults = {f.name: f for f in dataclasses.fields(cls)}
        for name, value in list(values.items()):
            default = defaults[name].default
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{name} must be true or false, got {value!r}")
            elif isinstance(default, int) and not isinstance(default, bool):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigError(f"{name} must be a whole number, got {value!r}")
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(f"{name} must be a number, got {value!r}")
                values[name] = float(value)
            elif isinstance(default, str) and not isinstance(value, str):
                raise ConfigError(f"{name} must be text, got {value!r}")
        return cls(**values)

    def replace(self, **changes: Any) -> TrainingConfig:
        return TrainingConfig.from_dict(self.to_dict() | changes)


def demo_config(**changes: Any) -> TrainingConfig:
    """A CPU demo, not the paper's model: the texture architecture (a fully convolutional G from a noise
    map, a patch D with spectral norm, the hinge loss, 64 px crops in all eight orientations) on the one
    class the demo study reads, LYM. From the dozen demo LYM patches it learns dark round nuclei on pink
    stroma in 5,000 steps, about 5 minutes on 2 CPU cores (by 6,000 the copying check flags some samples
    as near-copies of training patches). Trained on all eight classes at that budget each class got an eighth
    of the steps and stayed a speckled texture, and the paper's networks narrowed to that budget made flat
    colour (bench/demo_quality.py prints the figures)."""
    base = TrainingConfig(
        classes=("LYM",),
        architecture="texture",
        latent_dim=16,
        g_filters=32,
        d_filters=64,
        batch_size=16,
        train_crop=64,
        loss="hinge",
        spectral_norm=True,
        weight_init="pytorch",
        augmentations=("hflip", "vflip", "rot90"),
        steps=5000,
        checkpoint_every=500,
        sample_every=250,
        log_every=25,
        demo=True,
    )
    return base.replace(**changes) if changes else base
