"""What training and sampling runs share: their error, and reading checkpoint files."""

from __future__ import annotations

from pathlib import Path

from django.core.files.storage import default_storage

from gan.models import Checkpoint
from neural.config import TrainingConfig


class RunError(ValueError):
    """A training or sampling run that cannot start; the message says why."""


def checkpoint_path(checkpoint: Checkpoint) -> Path:
    # Checkpoints are written by torch.save to a local path under MEDIA_ROOT.
    return Path(default_storage.path(str(checkpoint.file.name)))


def checkpoint_check(*, checkpoint: Checkpoint, config: TrainingConfig | None = None) -> TrainingConfig:
    """Load a checkpoint's header and (optionally) check it fits `config`; returns its config."""
    from neural.checkpoint import CheckpointError, load_checkpoint, require_compatible

    try:
        loaded = load_checkpoint(checkpoint_path(checkpoint))
        if config is not None:
            require_compatible(loaded, config)
    except CheckpointError as exc:
        raise RunError(str(exc)) from None
    return loaded.config
