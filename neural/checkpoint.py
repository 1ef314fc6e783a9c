"""Self-describing checkpoints: both networks, both optimizers, step, config, RNG states. No Django.

Saved atomically (a temporary file renamed into place) and loaded with `weights_only=True`, so a
checkpoint is plain tensors and built-in types, never pickled code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from neural.config import ConfigError, TrainingConfig
from neural.model import architecture_of

FORMAT = "histoturing-cgan"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why."""


@dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint file's contents (the database row that names the file is `gan.models.Checkpoint`)."""

    step: int
    config: TrainingConfig
    state: dict[str, Any]


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> CheckpointFile:
    if not path.exists():
        raise CheckpointError(f"checkpoint {path.name} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types here (zip, pickle, weights-only refusals)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path.name} is corrupt, truncated or not a checkpoint ({first_line[:200]})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a histoturing cGAN checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path.name} has format version {state.get('version')}, expected {VERSION}"
        )
    try:
        config = TrainingConfig.from_dict(state["config"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path.name} holds an invalid config: {exc}") from None
    for key in ("generator", "discriminator", "step"):
        if key not in state:
            raise CheckpointError(f"checkpoint {path.name} lacks {key!r}")
    return CheckpointFile(step=int(state["step"]), config=config, state=state)


def require_compatible(
    checkpoint: CheckpointFile, config: TrainingConfig, *, name: str = "checkpoint"
) -> None:
    """Refuse a checkpoint whose weights do not fit `config`'s architecture or classes."""
    have, want = architecture_of(checkpoint.config), architecture_of(config)
    if have["classes"] != want["classes"]:
        raise CheckpointError(
            f"the class set differs from the {name}'s: {', '.join(want['classes'])} "  # type: ignore[arg-type]
            f"requested, {', '.join(have['classes'])} in the {name}"  # type: ignore[arg-type]
        )
    differences = [f"{key} {have[key]} != {want[key]}" for key in have if have[key] != want[key]]
    if differences:
        raise CheckpointError(f"the {name} is of another architecture: {'; '.join(differences)}")
