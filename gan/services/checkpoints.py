"""What training and sampling runs share: their error, and checkpoint files in storage.

A checkpoint is written by PyTorch to a local file on the worker, stored (an object store shows an object
only once all of it has arrived), and only then published: its database row, with its SHA-256, is what
makes it exist. Whoever loads it (a resumed run on another host, a sampling run, the web host checking a
header) gets a local copy from its own cache, checked against that hash."""

from __future__ import annotations

from pathlib import Path

from django.core.files.storage import default_storage

from core import filecache
from gan.models import Checkpoint, TrainingRun
from neural.config import TrainingConfig


class RunError(ValueError):
    """A training or sampling run that cannot start; the message says why."""


def checkpoint_sha256(checkpoint: Checkpoint) -> str:
    """The checkpoint's published SHA-256 (hashed from storage, once, for a row from before it was kept)."""
    if not checkpoint.sha256:
        checkpoint.sha256 = filecache.stored_sha256(str(checkpoint.file.name))
        Checkpoint.objects.filter(pk=checkpoint.pk).update(sha256=checkpoint.sha256)
    return checkpoint.sha256


def checkpoint_local(checkpoint: Checkpoint) -> Path:
    """A local copy of the checkpoint's file, from this host's cache where it holds it; StoredFileError
    when the stored file is missing or is not the one published."""
    return filecache.stored_copy(str(checkpoint.file.name), sha256=checkpoint.sha256, suffix=".pt")


def checkpoint_publish(*, run: TrainingRun, step: int, path: Path) -> Checkpoint:
    """Store the checkpoint file a run has just written at `step`, then publish it (its row)."""
    sha256 = filecache.file_sha256(path)
    name = filecache.store_file(path, f"checkpoints/run-{run.pk}/step-{step:07d}-{sha256[:16]}.pt")
    previous = Checkpoint.objects.filter(run=run, step=step).values_list("file", flat=True).first()
    checkpoint, _ = Checkpoint.objects.update_or_create(
        run=run, step=step, defaults={"file": name, "size": path.stat().st_size, "sha256": sha256}
    )
    if previous and previous != name:
        default_storage.delete(previous)  # the step was trained again (after a resume): its new file
    filecache.cache_adopt(path, sha256=sha256, suffix=".pt")
    return checkpoint


def checkpoint_check(*, checkpoint: Checkpoint, config: TrainingConfig | None = None) -> TrainingConfig:
    """Load a checkpoint's header and (optionally) check it fits `config`; returns its config."""
    from neural.checkpoint import CheckpointError, load_checkpoint, require_compatible

    try:
        loaded = load_checkpoint(checkpoint_local(checkpoint))
        if config is not None:
            require_compatible(loaded, config)
    except filecache.StoredFileError as exc:
        raise RunError(f"checkpoint at step {checkpoint.step:,}: {exc}") from None
    except CheckpointError as exc:
        raise RunError(str(exc)) from None
    return loaded.config
