from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neural.checkpoint import CheckpointError, load_checkpoint, require_compatible
from neural.data import PackedPatches
from neural.loop import train
from neural.sampling import BATCH_TOLERANCE, generate_all, load_generator, reproducibility, to_uint8
from tests.neural.conftest import tiny_config

CPU = torch.device("cpu")


@pytest.fixture
def checkpoint(tiny_data: PackedPatches, tmp_path: Path) -> Path:
    # PyTorch init: DCGAN init in a network this narrow gives near-constant grey images.
    result = train(
        config=tiny_config(steps=2, weight_init="pytorch"),
        data=tiny_data,
        device=CPU,
        checkpoint_dir=tmp_path,
    )
    assert result.checkpoint is not None
    return result.checkpoint


def _one(checkpoint: Path, class_index: int, seeds: list[int]) -> np.ndarray:
    generator, _, _ = load_generator(checkpoint, CPU)
    return generate_all(generator, class_index=class_index, seeds=seeds, device=CPU, batch_size=3)


def test_same_checkpoint_class_and_seed_give_the_same_image(checkpoint: Path) -> None:
    batch = _one(checkpoint, 1, [10, 11, 12, 13])
    alone = _one(checkpoint, 1, [12])
    assert np.array_equal(batch[2], alone[0])
    assert np.array_equal(_one(checkpoint, 1, [12]), alone)
    assert not np.array_equal(_one(checkpoint, 0, [12]), alone)
    assert not np.array_equal(batch[0], batch[1])


def test_batched_sampling_stays_within_its_tolerance_of_each_image_alone(checkpoint: Path) -> None:
    """The path CUDA takes (a chunk in one call), run here on the CPU: each image within BATCH_TOLERANCE
    grey levels of its seed alone, the same bytes when run again; the CPU's own path is exact."""
    generator, _, _ = load_generator(checkpoint, CPU)
    seeds = list(range(40, 56))
    batched = reproducibility(generator, class_index=1, seeds=seeds, device=CPU, batch_size=8, batched=True)
    assert batched.batched and batched.images == 16 and batched.repeatable
    assert batched.max_difference_to_alone <= BATCH_TOLERANCE and batched.within_tolerance
    exact = reproducibility(generator, class_index=1, seeds=seeds, device=CPU, batch_size=8)
    assert not exact.batched and exact.max_difference_to_alone == 0 and exact.differing_pixels == 0.0
    in_batches = generate_all(generator, class_index=1, seeds=seeds, device=CPU, batch_size=8, batched=True)
    assert not np.array_equal(in_batches[0], in_batches[1])  # a batch is not one image repeated


def test_to_uint8_rounds_rather_than_truncates() -> None:
    x = torch.tensor([-1.0, 1.0, 0.0, -0.996]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    out = to_uint8(x)
    assert out.shape == (1, 2, 2, 3)
    assert out[0, :, :, 0].flatten().tolist() == [0, 255, 128, 1]  # 127.5 rounds to 128, 0.51 to 1


def test_truncated_checkpoint_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.pt"
    cut.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt, truncated or not a checkpoint"):
        load_checkpoint(cut)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt, truncated or not a checkpoint"):
        load_checkpoint(junk)


def test_foreign_file_and_other_classes_are_refused(checkpoint: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a histoturing cGAN checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="class set differs"):
        require_compatible(load_checkpoint(checkpoint), tiny_config(classes=("LYM", "ADI")))
