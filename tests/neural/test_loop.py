from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neural.checkpoint import CheckpointError, load_checkpoint
from neural.data import DataError, PackedPatches
from neural.loop import Progress, Trainer, train
from tests.neural.conftest import tiny_config

CPU = torch.device("cpu")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(path).state
    return {f"g.{k}": v for k, v in state["generator"].items()} | {
        f"d.{k}": v for k, v in state["discriminator"].items()
    }


def test_one_step_changes_both_networks(tiny_data: PackedPatches) -> None:
    trainer = Trainer(tiny_config(), CPU)
    before_g = [p.detach().clone() for p in trainer.generator.parameters()]
    before_d = [p.detach().clone() for p in trainer.discriminator.parameters()]
    real = torch.from_numpy(tiny_data.images[:4].copy()).permute(0, 3, 1, 2).float() / 127.5 - 1
    losses = trainer.step(real, torch.tensor([0, 1, 0, 1]), 0)
    assert losses.shape == (3,) and torch.isfinite(losses).all()
    assert all(not torch.equal(a, b) for a, b in zip(before_g, trainer.generator.parameters(), strict=True))
    assert all(
        not torch.equal(a, b) for a, b in zip(before_d, trainer.discriminator.parameters(), strict=True)
    )


def test_resumed_run_ends_bitwise_equal_to_an_uninterrupted_one(
    tiny_data: PackedPatches, tmp_path: Path
) -> None:
    config = tiny_config(augmentations=("hflip", "rot90"), d_dropout=0.2)
    full = train(config=config, data=tiny_data, device=CPU, checkpoint_dir=tmp_path / "full")
    assert full.status == "finished" and full.step == 6

    calls = {"n": 0}

    def stop_after_four() -> bool:
        calls["n"] += 1
        return calls["n"] > 4

    first = train(
        config=config, data=tiny_data, device=CPU, checkpoint_dir=tmp_path / "part", abort_fn=stop_after_four
    )
    assert first.status == "cancelled" and first.step == 4
    assert first.checkpoint is not None and first.checkpoint.name == "step-0000004.pt"
    resumed = train(
        config=config, data=tiny_data, device=CPU, checkpoint_dir=tmp_path / "part", resume=first.checkpoint
    )
    assert resumed.status == "finished" and resumed.step == 6

    a, b = _weights(full.checkpoint), _weights(resumed.checkpoint)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    opt_a = load_checkpoint(full.checkpoint).state["opt_g"]["state"]
    opt_b = load_checkpoint(resumed.checkpoint).state["opt_g"]["state"]
    assert all(torch.equal(opt_a[k]["exp_avg"], opt_b[k]["exp_avg"]) for k in opt_a)


def test_checkpoints_describe_themselves(tiny_data: PackedPatches, tmp_path: Path) -> None:
    result = train(config=tiny_config(), data=tiny_data, device=CPU, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["step-0000003.pt", "step-0000006.pt"]
    checkpoint = load_checkpoint(result.checkpoint)
    assert checkpoint.step == 6 and checkpoint.config == tiny_config()
    assert {"generator", "discriminator", "opt_g", "opt_d", "rng", "environment"} <= checkpoint.state.keys()
    assert checkpoint.state["environment"]["torch"] == torch.__version__


def test_progress_samples_and_checkpoint_callbacks(tiny_data: PackedPatches, tmp_path: Path) -> None:
    progress: list[Progress] = []
    grids: list[tuple[int, np.ndarray]] = []
    saved: list[int] = []
    train(
        config=tiny_config(),
        data=tiny_data,
        device=CPU,
        checkpoint_dir=tmp_path,
        progress_fn=progress.append,
        sample_fn=lambda s, g: grids.append((s, g)),
        checkpoint_fn=lambda s, p: saved.append(s),
    )
    assert [p.step for p in progress] == [1, 2, 3, 4, 5, 6]
    assert progress[-1].seconds_left == 0 and progress[0].images_per_second > 0
    assert all(np.isfinite([p.loss_d_real, p.loss_d_fake, p.loss_g]).all() for p in progress)
    assert progress[-1].epoch == (5 * 4) // 10
    assert [s for s, _ in grids] == [3, 6]
    assert grids[0][1].shape == (2 * 128, 2 * 128, 3) and grids[0][1].dtype == np.uint8
    assert saved == [3, 6]


def test_resume_refuses_another_architecture(tiny_data: PackedPatches, tmp_path: Path) -> None:
    result = train(config=tiny_config(), data=tiny_data, device=CPU, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="another architecture: g_filters 8 != 16"):
        train(
            config=tiny_config(g_filters=16),
            data=tiny_data,
            device=CPU,
            checkpoint_dir=tmp_path,
            resume=result.checkpoint,
        )


def test_a_class_without_patches_is_refused(tmp_path: Path) -> None:
    images = np.zeros((4, 128, 128, 3), dtype=np.uint8)
    data = PackedPatches.from_arrays(images, np.zeros(4, dtype=np.int64), ("LYM", "TUM"))
    with pytest.raises(DataError, match="no patches of class.*TUM"):
        train(config=tiny_config(), data=data, device=CPU, checkpoint_dir=tmp_path)


def test_bf16_autocast_step_learns_like_fp32(tiny_data: PackedPatches) -> None:
    real = torch.from_numpy(tiny_data.images[:4].copy()).permute(0, 3, 1, 2).float() / 127.5 - 1
    labels = torch.tensor([0, 1, 0, 1])
    results = {}
    for precision in ("fp32", "bf16"):
        trainer = Trainer(tiny_config(precision=precision, channels_last=True), CPU)
        results[precision] = trainer.step(real.contiguous(memory_format=torch.channels_last), labels, 0)
    assert torch.allclose(results["fp32"], results["bf16"], rtol=0.05, atol=0.05)
