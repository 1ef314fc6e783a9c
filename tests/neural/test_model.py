"""The networks against the paper's specification, layer by layer."""

from __future__ import annotations

import torch
from torch import nn

from neural.config import TrainingConfig
from neural.model import Discriminator, Generator, build_models, parameter_count

PAPER = TrainingConfig()


def test_generator_layers_match_the_paper() -> None:
    g = Generator(PAPER)
    assert isinstance(g.project, nn.Linear)
    assert (g.project.in_features, g.project.out_features) == (1500 + 8, 128 * 4 * 4)
    convs = [m for m in g.upsample if isinstance(m, nn.ConvTranspose2d)]
    acts = [m for m in g.upsample if isinstance(m, nn.LeakyReLU)]
    assert len(convs) == 5 and len(acts) == 5
    for conv in convs:
        assert conv.kernel_size == (4, 4) and conv.stride == (2, 2)
        assert conv.in_channels == 128 and conv.out_channels == 128
    assert all(a.negative_slope == 0.2 for a in acts)
    assert g.to_rgb.out_channels == 3


def test_generator_feature_maps_double_from_4_to_128() -> None:
    g = Generator(PAPER)
    sizes = []
    x = g.project_act(g.project(torch.zeros(1, 1508))).view(1, 128, 4, 4)
    sizes.append(x.shape[-1])
    for layer in g.upsample:
        x = layer(x)
        if isinstance(layer, nn.ConvTranspose2d):
            sizes.append(x.shape[-1])
    assert sizes == [4, 8, 16, 32, 64, 128]


def test_generator_output_is_tanh_rgb_128() -> None:
    g = Generator(PAPER)
    out = g(torch.randn(2, 1500) * 50, torch.tensor([0, 7]))
    assert out.shape == (2, 3, 128, 128)
    assert out.abs().max() <= 1.0


def test_discriminator_layers_match_the_paper() -> None:
    d = Discriminator(PAPER)
    convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5
    assert convs[0].in_channels == 3 + 8  # RGB plus one constant plane per class
    for conv in convs:
        assert conv.kernel_size == (4, 4) and conv.stride == (2, 2) and conv.out_channels == 128
    assert (d.logit.in_features, d.logit.out_features) == (128 * 4 * 4, 1)
    logits = d(torch.zeros(3, 3, 128, 128), torch.tensor([0, 1, 2]))
    assert logits.shape == (3,)


def test_parameter_counts_match_the_spec() -> None:
    g, d = build_models(PAPER)
    f = 128
    expected_g = (1508 * f * 16 + f * 16) + 5 * (f * f * 16 + f) + (f * 3 * 49 + 3)
    expected_d = ((3 + 8) * f * 16 + f) + 4 * (f * f * 16 + f) + (f * 16 + 1)
    assert parameter_count(g) == expected_g == 4_420_611
    assert parameter_count(d) == expected_d == 1_073_793


def test_projection_discriminator_uses_a_class_embedding() -> None:
    config = TrainingConfig(d_label_mode="projection", spectral_norm=True)
    d = Discriminator(config)
    assert d.embed is not None and d.features[0].in_channels == 3
    x = torch.randn(2, 3, 128, 128)
    assert not torch.equal(d(x, torch.tensor([0, 0])), d(x, torch.tensor([0, 5])))


def test_label_changes_the_generated_image() -> None:
    g = Generator(PAPER)
    z = torch.randn(1, 1500)
    assert not torch.equal(g(z, torch.tensor([0])), g(z, torch.tensor([3])))


def test_dcgan_init_draws_weights_with_std_002() -> None:
    g, _ = build_models(PAPER)
    weights = torch.cat([m.weight.flatten() for m in g.upsample if isinstance(m, nn.ConvTranspose2d)])
    assert abs(weights.std().item() - 0.02) < 0.001
    assert g.project.bias.abs().sum() == 0


def test_nearest_upsampling_makes_the_same_shapes_without_transposed_convolutions() -> None:
    from neural.model import build_models
    from tests.neural.conftest import tiny_config

    config = tiny_config(g_upsample="nearest")
    generator, _ = build_models(config)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in generator.modules())
    images = generator(torch.randn(2, config.latent_dim), torch.tensor([0, 1]))
    assert images.shape == (2, 3, 128, 128) and images.abs().max() <= 1


def test_diff_augment_changes_what_d_sees_the_same_way_for_the_same_seed() -> None:
    from neural.runtime import diff_augment

    images = torch.rand(4, 3, 32, 32) * 2 - 1
    first = diff_augment(images, ("color", "translation", "cutout"), torch.Generator().manual_seed(3))
    again = diff_augment(images, ("color", "translation", "cutout"), torch.Generator().manual_seed(3))
    assert torch.equal(first, again) and not torch.equal(first, images)
    cut = diff_augment(torch.ones(4, 3, 32, 32), ("cutout",), torch.Generator().manual_seed(0))
    assert ((cut == 0).float().mean(dim=(1, 2, 3)) == 0.25).all()  # a square of half the side, zeroed
    moved = diff_augment(images, ("translation",), torch.Generator().manual_seed(1))
    assert torch.isclose(moved.abs().sum(), images.abs().sum(), rtol=0.3)  # shifted, edges zero-padded
    images.requires_grad_(True)
    diff_augment(
        images, ("color", "translation", "cutout"), torch.Generator().manual_seed(2)
    ).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0  # differentiable: G learns through it
