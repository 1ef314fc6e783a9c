from __future__ import annotations

import pytest

from neural.config import ConfigError, TrainingConfig, demo_config


def test_defaults_are_the_papers() -> None:
    c = TrainingConfig()
    assert c.batch_size == 125 and c.lr_g == c.lr_d == 2e-4 and c.beta1 == 0.5
    assert c.latent_dim == 1500 and c.classes == ("ADI", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM")
    assert not c.demo


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lr_g": 0}, "lr_g must be > 0"),
        ({"lr_d": -1e-4}, "lr_d must be > 0"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"classes": ["LYM", "XYZ"]}, "unknown class.*XYZ"),
        ({"d_label_mode": "magic"}, "d_label_mode must be one of"),
        ({"augmentations": ["blur"]}, "augmentations: unknown blur"),
        ({"steps": "many"}, "steps must be a whole number"),
        ({"nonsense": 1}, "unknown config field.*nonsense"),
        ({"image_size": 64}, "image_size must be 128"),
    ],
)
def test_invalid_configs_are_refused_naming_the_field(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainingConfig().replace(**changes)


def test_round_trip_through_a_dict() -> None:
    c = demo_config(classes=["lym", "tum"], augmentations="hflip,rot90")
    assert c.classes == ("LYM", "TUM") and c.augmentations == ("hflip", "rot90")
    assert TrainingConfig.from_dict(c.to_dict()) == c


def test_small_data_options_are_checked_by_name() -> None:
    import pytest

    from neural.config import ConfigError, TrainingConfig

    config = TrainingConfig.from_dict({"diffaugment": "color,cutout", "g_upsample": "nearest"})
    assert config.diffaugment == ("color", "cutout") and config.to_dict()["diffaugment"] == [
        "color",
        "cutout",
    ]
    with pytest.raises(ConfigError, match="diffaugment: unknown zoom"):
        TrainingConfig.from_dict({"diffaugment": ["zoom"]})
    with pytest.raises(ConfigError, match="g_upsample must be one of transposed, nearest"):
        TrainingConfig.from_dict({"g_upsample": "bilinear"})
