from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neural.data import DataError, batch_indices, load_batch, open_pack, pack_exists, pack_patches


def test_pack_round_trip_is_memory_mapped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    items = [(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8), i % 2) for i in range(5)]
    pack_patches(iter(items), count=5, classes=("LYM", "TUM"), path=tmp_path / "p")
    assert pack_exists(tmp_path / "p")
    again = open_pack(tmp_path / "p")
    assert isinstance(again.images, np.memmap)
    assert np.array_equal(again.images[3], items[3][0]) and again.labels.tolist() == [0, 1, 0, 1, 0]
    assert again.class_counts() == {"LYM": 3, "TUM": 2}


def test_pack_refuses_a_wrong_count(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected 3 patches, got 1"):
        pack_patches(
            iter([(np.zeros((128, 128, 3), np.uint8), 0)]), count=3, classes=("LYM",), path=tmp_path / "p"
        )
    assert not pack_exists(tmp_path / "p")


def test_batches_cover_each_epoch_once_and_depend_only_on_seed_and_step() -> None:
    seen = np.concatenate([batch_indices(seed=3, step=s, batch_size=4, n=10)[0] for s in range(5)])
    assert sorted(seen[:10].tolist()) == list(range(10))  # epoch 0
    assert sorted(seen[10:20].tolist()) == list(range(10))  # epoch 1
    again, epoch = batch_indices(seed=3, step=3, batch_size=4, n=10)
    assert np.array_equal(again, seen[12:16]) and epoch == 1
    assert not np.array_equal(batch_indices(seed=4, step=0, batch_size=4, n=10)[0], seen[:4])


def test_load_batch_scales_to_minus_one_one_in_channels_last() -> None:
    images = np.zeros((2, 128, 128, 3), dtype=np.uint8)
    images[1] = 255
    from neural.data import PackedPatches

    data = PackedPatches.from_arrays(images, np.array([0, 1]), ("LYM", "TUM"))
    batch, labels = load_batch(data, np.array([1, 0]), torch.device("cpu"))
    assert batch.shape == (2, 3, 128, 128)
    assert batch.is_contiguous(memory_format=torch.channels_last)
    assert batch[0].max() == -1.0 and batch[1].min() == 1.0 and labels.tolist() == [0, 1]
