"""Local copies of stored files, for the code that needs a path (PyTorch's loader, a memory-mapped pack).

Media live behind Django's storage API (a folder, or an S3-compatible object store): a worker on another
host reads them from there, never from the web host's disk. What it needs as a local file it copies into
its own cache (`settings.WORKER_CACHE_DIR`), named by content hash, so a copy is made once per content,
never served stale, and shared by the worker's processes. The cache is bounded
(`settings.WORKER_CACHE_MAX_BYTES`): the entries used longest ago are removed first, never one in use.

An entry is a group of files sharing a stem (`objects/<sha256>.pt`, or a pack's `packs/<key>.images.npy`,
`.labels.npy` and `.json`); a use touches its files, which is what "used longest ago" reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

logger = logging.getLogger(__name__)

CHUNK = 1 << 20


class StoredFileError(OSError):
    """A stored file that is missing, or whose content is not the one it was published with."""


def cache_root() -> Path:
    root = Path(settings.WORKER_CACHE_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return root


def stored_sha256(name: str) -> str:
    """The SHA-256 of a stored file, read through storage."""
    digest = hashlib.sha256()
    with default_storage.open(name, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _download(name: str, target: Path) -> str:
    """Copy a stored file to `target` (written under a temporary name, then renamed); its SHA-256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle_out, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle_out, "wb") as out:
            try:
                source = default_storage.open(name, "rb")
            except FileNotFoundError:
                raise StoredFileError(f"{name} is not in storage") from None
            with source:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return digest.hexdigest()


def stored_copy_to(name: str, target: Path) -> str:
    """Copy the stored file `name` to the local path `target` (atomically); its SHA-256."""
    return _download(name, target)


def _touch(paths: Iterable[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)


def stored_copy(name: str, *, sha256: str = "", suffix: str = "") -> Path:
    """A local copy of the stored file `name`, from the cache when it holds this content.

    With `sha256` (the hash the file was published with) the copy is found by it and checked against it:
    a stored file whose bytes changed raises StoredFileError rather than being used. Without it, the
    file is downloaded and then kept under the hash of what came."""
    root = cache_root() / "objects"
    if sha256:
        cached = root / f"{sha256}{suffix}"
        if cached.exists():
            _touch([cached])
            return cached
    incoming = root / f"incoming-{os.getpid()}-{hashlib.sha256(name.encode()).hexdigest()[:16]}{suffix}"
    got = _download(name, incoming)
    if sha256 and got != sha256:
        incoming.unlink(missing_ok=True)
        raise StoredFileError(
            f"{name} in storage is not the file that was published (SHA-256 {got[:12]}..., "
            f"published as {sha256[:12]}...)"
        )
    cached = root / f"{got}{suffix}"
    os.replace(incoming, cached)
    cache_trim(keep=[cached])
    return cached


def cache_adopt(path: Path, *, sha256: str, suffix: str = "") -> Path:
    """Keep a local file just written (and published) as the cached copy of its content, by a hard link
    where the file system allows it (no second copy), else a copy. The original stays."""
    cached = cache_root() / "objects" / f"{sha256}{suffix}"
    cached.parent.mkdir(parents=True, exist_ok=True)
    if not cached.exists():
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.part")
        tmp.unlink(missing_ok=True)
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copyfile(path, tmp)
        os.replace(tmp, cached)
    cache_trim(keep=[cached])
    return cached


def store_file(path: Path, name: str, *, exact: bool = False) -> str:
    """Write a local file to storage under `name`; the name it was stored under.

    An object store makes an object visible only once all of it has arrived, so a reader never sees half
    a file; a caller publishes the name (a database row, or a marker written last) only after this
    returns. `exact`: under `name` itself, replacing what a run killed mid-upload left there (a folder
    storage would otherwise choose another name)."""
    if exact and default_storage.exists(name):
        default_storage.delete(name)
    with path.open("rb") as handle:
        stored = default_storage.save(name, File(handle, name=path.name))
    if exact and stored != name:
        raise StoredFileError(f"storage kept {name} as {stored}: another writer is storing it at once")
    return stored


STORE_THREADS = 8
_store_pool: ThreadPoolExecutor | None = None
_store_pool_lock = threading.Lock()


def store_pool() -> ThreadPoolExecutor:
    """The process's threads for storing many small files at once (a sampling run's patches). Kept for
    the life of the process: each thread holds its own connection to an object store, which costs a
    tenth of a second or more of CPU to open, so a worker opens them once, not once per run."""
    global _store_pool
    with _store_pool_lock:
        if _store_pool is None:
            _store_pool = ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="store")
        return _store_pool


def store_content_addressed(name: str, content: Callable[[], bytes]) -> str:
    """Store the bytes `content()` makes under `name`, a name derived from those bytes (a content hash):
    a name already stored holds them. A folder storage is asked first (it would keep a second copy under
    another name); an object store that overwrites is written without asking (one request, not two)."""
    overwrites = bool(getattr(default_storage, "file_overwrite", False))
    if not overwrites and default_storage.exists(name):
        return name
    return default_storage.save(name, ContentFile(content()))


def _entries(root: Path) -> dict[Path, list[Path]]:
    groups: dict[Path, list[Path]] = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            stem = path.with_name(path.name.split(".", 1)[0])
            groups.setdefault(stem, []).append(path)
    return groups


def cache_trim(*, keep: Iterable[Path] = (), limit: int | None = None) -> int:
    """Remove the entries used longest ago until the cache holds at most `limit` bytes (the setting by
    default), sparing the entries of `keep`; the bytes removed. A pack memory-mapped by a process stays
    readable by it after its files are removed (POSIX)."""
    limit = int(settings.WORKER_CACHE_MAX_BYTES) if limit is None else limit
    root = cache_root()
    spared = {p.with_name(p.name.split(".", 1)[0]) for p in keep}
    groups = _entries(root)
    sizes, used = {}, {}
    for stem, files in groups.items():
        stats = [f.stat() for f in files if f.exists()]
        sizes[stem] = sum(s.st_size for s in stats)
        used[stem] = max((s.st_mtime for s in stats), default=0.0)
    total, removed = sum(sizes.values()), 0
    for stem in sorted(groups, key=lambda s: used[s]):
        if total <= limit:
            break
        if stem in spared:
            continue
        for path in groups[stem]:
            path.unlink(missing_ok=True)
        total -= sizes[stem]
        removed += sizes[stem]
        logger.info("worker cache: removed %s (%s bytes) to stay within %s bytes", stem, sizes[stem], limit)
    return removed


def touch(paths: Iterable[Path]) -> None:
    """Mark cached files as used now."""
    _touch(paths)
