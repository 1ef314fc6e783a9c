"""The texture architecture: a fully convolutional generator from a noise map and a patch discriminator,
trained on crops, sampling whole patches reproducibly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neural.checkpoint import load_checkpoint
from neural.config import ConfigError
from neural.data import PackedPatches
from neural.loop import Trainer, train
from neural.model import PatchDiscriminator, TextureGenerator
from neural.sampling import generate_all, load_generator
from tests.neural.conftest import tiny_config

CPU = torch.device("cpu")


def texture(**changes: object) -> object:
    return tiny_config(
        **(
            {
                "architecture": "texture",
                "train_crop": 64,
                "loss": "hinge",
                "spectral_norm": True,
                "weight_init": "pytorch",
            }
            | changes
        )
    )


def test_the_generator_makes_any_multiple_of_16_and_the_discriminator_judges_regions() -> None:
    config = texture()
    g, d = TextureGenerator(config).eval(), PatchDiscriminator(config)  # type: ignore[arg-type]
    labels = torch.tensor([0, 1])
    assert g.latent_shape == (config.latent_dim, 8, 8)  # type: ignore[attr-defined]
    for side in (64, 128):
        z = torch.randn(2, config.latent_dim, side // 16, side // 16)  # type: ignore[attr-defined]
        images = g(z, labels)
        assert images.shape == (2, 3, side, side) and images.abs().max() <= 1
        assert d(images, labels).shape == (2, side // 8, side // 8)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"architecture": "paper", "train_crop": 64}, "train_crop must be 0, or a multiple of 16"),
        ({"train_crop": 72}, "train_crop must be 0, or a multiple of 16"),
        ({"train_crop": 16}, "train_crop must be 0, or a multiple of 16"),
        ({"loss": "wasserstein"}, "loss must be one of bce, hinge"),
        ({"architecture": "stylegan"}, "architecture must be one of paper, texture"),
    ],
)
def test_bad_texture_settings_are_refused_by_name(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        texture(**changes)


def test_a_step_on_crops_changes_both_networks(tiny_data: PackedPatches) -> None:
    trainer = Trainer(texture(), CPU)  # type: ignore[arg-type]
    # Every weight of both (the hinge loss's gradient on D's last bias is 0 while every logit is within 1).
    watched = dict(trainer.generator.named_parameters()) | {
        name: p for name, p in trainer.discriminator.named_parameters() if "weight" in name
    }
    before = {name: p.detach().clone() for name, p in watched.items()}
    real = torch.from_numpy(tiny_data.images[:4].copy()).permute(0, 3, 1, 2).float() / 127.5 - 1
    losses = trainer.step(real, torch.tensor([0, 1, 0, 1]), 0)
    assert torch.isfinite(losses).all()
    assert [name for name, p in watched.items() if torch.equal(before[name], p)] == []
    assert trainer.sample_grid().shape == (2 * 128, 2 * 128, 3)  # whole patches, one row per class


def test_a_texture_run_resumes_exactly_and_samples_reproducibly(
    tiny_data: PackedPatches, tmp_path: Path
) -> None:
    config = texture(steps=4, checkpoint_every=2, g_ema=0.5)
    full = train(config=config, data=tiny_data, device=CPU, checkpoint_dir=tmp_path / "full")  # type: ignore[arg-type]
    part = train(
        config=config,  # type: ignore[arg-type]
        data=tiny_data,
        device=CPU,
        checkpoint_dir=tmp_path / "part",
        resume=tmp_path / "full" / "step-0000002.pt",
    )
    assert full.checkpoint is not None and part.checkpoint is not None
    generator, loaded, _ = load_generator(full.checkpoint, CPU)
    resumed, _, _ = load_generator(part.checkpoint, CPU)
    assert loaded.architecture == "texture"
    state = load_checkpoint(full.checkpoint).state
    averaged = state["generator_ema"]
    assert all(torch.equal(v, averaged[k]) for k, v in generator.state_dict().items())  # samples: the average
    assert any(not torch.equal(v, state["generator"][k]) for k, v in averaged.items())
    assert all(
        torch.equal(a, b)
        for a, b in zip(generator.state_dict().values(), resumed.state_dict().values(), strict=True)
    )

    def images(seeds: list[int], batch_size: int) -> np.ndarray:
        return generate_all(generator, class_index=1, seeds=seeds, device=CPU, batch_size=batch_size)

    together, alone = images([5, 6, 7], 3), images([6], 1)
    assert together.shape == (3, 128, 128, 3)
    assert np.array_equal(together[1], alone[0])  # an image depends on its seed, not on its batch
    assert not np.array_equal(together[0], together[1])
