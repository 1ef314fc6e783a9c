"""The paper's conditional GAN. No Django here.

Generator: a latent vector concatenated with a one-hot class label, projected by a linear layer to a
4x4 map of `g_filters` channels, then five transposed convolutions (4x4, stride 2, `g_filters`
filters, each followed by LeakyReLU 0.2) to 128x128, then a last convolution to RGB with tanh.

Discriminator: the image and its label ("symmetrically conditioned"), five convolutions (4x4,
stride 2, `d_filters` filters, LeakyReLU 0.2) from 128x128 to 4x4, flattened to one logit (the
sigmoid lives in the loss: BCEWithLogits is the paper's binary cross-entropy, and autocast-safe).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neural.config import TrainingConfig

BASE = 4  # the generator's first feature map is 4x4
UPSAMPLINGS = 5  # 4 -> 8 -> 16 -> 32 -> 64 -> 128
_LAST_KERNEL = {"conv7": 7, "conv3": 3, "conv1": 1}


TEXTURE_DOWNSCALE = 16  # the texture generator's noise map is 1/16 of the image's side


def latent_shape(config: TrainingConfig, side: int | None = None) -> tuple[int, ...]:
    """One image's noise: the paper's vector, or the texture generator's map for an image of `side` px
    (default: the config's image size)."""
    if config.architecture != "texture":
        return (config.latent_dim,)
    cells = (side or config.image_size) // TEXTURE_DOWNSCALE
    return (config.latent_dim, cells, cells)


def _planes(labels: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """One constant plane per class, 1 on the label's: [N, C, H, W] the size of `like` [N, *, H, W]."""
    onehot = F.one_hot(labels, num_classes).to(like.dtype)  # [N, C]
    return onehot[:, :, None, None].expand(-1, -1, like.shape[2], like.shape[3])


class Generator(nn.Module):
    latent_shape: tuple[int, ...]  # one image's noise (the texture generator's is a map)

    def __init__(self, config: TrainingConfig) -> None:
        super().__init__()
        self.latent_shape = latent_shape(config)
        self.num_classes = config.num_classes
        filters = config.g_filters
        self.filters = filters
        self.project = nn.Linear(config.latent_dim + config.num_classes, filters * BASE * BASE)
        self.project_act = nn.LeakyReLU(config.leaky_slope)
        layers: list[nn.Module] = []
        for _ in range(UPSAMPLINGS):
            if config.g_upsample == "nearest":
                layers += [
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(filters, filters, 3, padding=1),
                ]
            else:
                layers.append(nn.ConvTranspose2d(filters, filters, 4, stride=2, padding=1))
            layers.append(nn.LeakyReLU(config.leaky_slope))
        self.upsample = nn.Sequential(*layers)
        kernel = _LAST_KERNEL[config.g_last_layer]
        self.to_rgb = nn.Conv2d(filters, 3, kernel, padding=kernel // 2)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # z: [N, latent_dim], labels: [N] class indices -> [N, 3, 128, 128] in [-1, 1]
        onehot = F.one_hot(labels, self.num_classes).to(z.dtype)  # [N, C]
        x = self.project_act(self.project(torch.cat([z, onehot], dim=1)))  # [N, f*16]
        x = x.view(-1, self.filters, BASE, BASE)  # [N, f, 4, 4]
        x = self.upsample(x)  # [N, f, 128, 128]
        return torch.tanh(self.to_rgb(x))  # [N, 3, 128, 128]


class Discriminator(nn.Module):
    def __init__(self, config: TrainingConfig) -> None:
        super().__init__()
        self.num_classes = config.num_classes
        self.label_mode = config.d_label_mode
        filters = config.d_filters
        in_channels = 3 + (config.num_classes if self.label_mode == "onehot_channels" else 0)
        wrap = nn.utils.parametrizations.spectral_norm if config.spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        for index in range(UPSAMPLINGS):
            layers += [
                wrap(nn.Conv2d(in_channels if index == 0 else filters, filters, 4, stride=2, padding=1)),
                nn.LeakyReLU(config.leaky_slope),
            ]
        self.features = nn.Sequential(*layers)
        features = filters * BASE * BASE
        self.dropout = nn.Dropout(config.d_dropout)
        self.logit = wrap(nn.Linear(features, 1))
        self.embed = (
            wrap(nn.Embedding(config.num_classes, features)) if self.label_mode == "projection" else None
        )

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # images: [N, 3, 128, 128] in [-1, 1], labels: [N] -> logits [N]
        x = images
        if self.label_mode == "onehot_channels":
            x = torch.cat([images, _planes(labels, self.num_classes, images)], dim=1)  # [N, 3 + C, H, W]
        h = self.features(x).flatten(1)  # [N, f*16]
        h = self.dropout(h)
        out = self.logit(h).squeeze(1)  # [N]
        if self.embed is not None:
            out = out + (self.embed(labels) * h).sum(dim=1)
        return out


class TextureGenerator(nn.Module):
    """Fully convolutional: a noise map [N, latent_dim, s/16, s/16] and the label's planes, four doublings
    (nearest, 3x3 convolution with reflection padding, batch norm, LeakyReLU) of widths 3f, 2f, 3f/2, f,
    then a 3x3 convolution to RGB and tanh. Any side that is a multiple of 16: trained on crops, it
    samples whole 128x128 patches from an 8x8 map."""

    def __init__(self, config: TrainingConfig) -> None:
        super().__init__()
        self.num_classes = config.num_classes
        self.latent_shape = latent_shape(config)
        f = config.g_filters
        widths = [3 * f, 2 * f, 3 * f // 2, f]
        self.project = nn.Conv2d(
            config.latent_dim + config.num_classes, widths[0], 3, padding=1, padding_mode="reflect"
        )
        layers: list[nn.Module] = [nn.LeakyReLU(config.leaky_slope)]
        for width_in, width_out in zip(widths, [*widths[1:], widths[-1]], strict=True):
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(width_in, width_out, 3, padding=1, padding_mode="reflect"),
                nn.BatchNorm2d(width_out),
                nn.LeakyReLU(config.leaky_slope),
            ]
        self.body = nn.Sequential(*layers)
        self.to_rgb = nn.Conv2d(f, 3, 3, padding=1, padding_mode="reflect")

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # z: [N, latent_dim, h, w], labels: [N] -> [N, 3, 16h, 16w] in [-1, 1]
        x = torch.cat([z, _planes(labels, self.num_classes, z)], dim=1)  # [N, latent + C, h, w]
        return torch.tanh(self.to_rgb(self.body(self.project(x))))


class PatchDiscriminator(nn.Module):
    """The image and its label's planes, three 4x4 stride-2 convolutions (widths f, 2f, 2f) and a 3x3
    convolution to one logit per region: [N, s/8, s/8], each seeing about 46 px of tissue."""

    def __init__(self, config: TrainingConfig) -> None:
        super().__init__()
        self.num_classes = config.num_classes
        f = config.d_filters
        wrap = nn.utils.parametrizations.spectral_norm if config.spectral_norm else (lambda m: m)
        self.net = nn.Sequential(
            wrap(nn.Conv2d(3 + config.num_classes, f, 4, stride=2, padding=1)),
            nn.LeakyReLU(config.leaky_slope),
            wrap(nn.Conv2d(f, 2 * f, 4, stride=2, padding=1)),
            nn.LeakyReLU(config.leaky_slope),
            wrap(nn.Conv2d(2 * f, 2 * f, 4, stride=2, padding=1)),
            nn.LeakyReLU(config.leaky_slope),
            wrap(nn.Conv2d(2 * f, 1, 3, padding=1)),
        )

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # images: [N, 3, s, s], labels: [N] -> logits [N, s/8, s/8]
        x = torch.cat([images, _planes(labels, self.num_classes, images)], dim=1)
        return self.net(x).squeeze(1)


def init_weights(module: nn.Module, scheme: str) -> None:
    """DCGAN's N(0, 0.02) for convolutions and linear layers, zero biases; or PyTorch's defaults."""
    if scheme != "dcgan":
        return
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            weight = getattr(layer, "parametrizations", None)
            target = (
                weight.weight.original if weight is not None and hasattr(weight, "weight") else layer.weight
            )
            nn.init.normal_(target, 0.0, 0.02)
            bias = getattr(layer, "bias", None)
            if isinstance(bias, torch.Tensor):
                nn.init.zeros_(bias)


def build_generator(config: TrainingConfig) -> nn.Module:
    return TextureGenerator(config) if config.architecture == "texture" else Generator(config)


def build_models(config: TrainingConfig) -> tuple[nn.Module, nn.Module]:
    generator = build_generator(config)
    discriminator = PatchDiscriminator(config) if config.architecture == "texture" else Discriminator(config)
    init_weights(generator, config.weight_init)
    init_weights(discriminator, config.weight_init)
    return generator, discriminator


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


ARCHITECTURE_FIELDS = (
    "classes",
    "latent_dim",
    "image_size",
    "g_filters",
    "d_filters",
    "d_label_mode",
    "g_last_layer",
    "spectral_norm",
    "g_upsample",
    "architecture",
)


def architecture_of(config: TrainingConfig) -> dict[str, object]:
    """What a checkpoint's weights depend on: two configs with equal architectures share weights."""
    data = config.to_dict()
    return {name: data[name] for name in ARCHITECTURE_FIELDS}
