"""A worker's local copies of stored files: found by content, checked, bounded, never half-written."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from core import filecache


@pytest.fixture
def cache(settings: Any, media_root: Path) -> Path:
    return Path(settings.WORKER_CACHE_DIR)


def _stored(name: str, data: bytes) -> str:
    return default_storage.save(name, ContentFile(data))


def test_a_copy_is_fetched_once_per_content_and_found_by_its_hash(cache: Path) -> None:
    data = os.urandom(3000)
    sha = hashlib.sha256(data).hexdigest()
    name = _stored("checkpoints/a.pt", data)
    copy = filecache.stored_copy(name, sha256=sha, suffix=".pt")
    assert copy == cache / "objects" / f"{sha}.pt" and copy.read_bytes() == data
    default_storage.delete(name)  # from now on only the cache holds it
    assert filecache.stored_copy(name, sha256=sha, suffix=".pt").read_bytes() == data
    with pytest.raises(filecache.StoredFileError, match="is not in storage"):
        filecache.stored_copy(name)  # without the hash there is nothing to find it by


def test_a_stored_file_that_is_not_the_published_one_is_refused_and_not_kept(cache: Path) -> None:
    name = _stored("checkpoints/b.pt", b"what is stored now")
    published = hashlib.sha256(b"what was published").hexdigest()
    with pytest.raises(filecache.StoredFileError, match="is not the file that was published"):
        filecache.stored_copy(name, sha256=published, suffix=".pt")
    assert not list((cache / "objects").iterdir())


def test_the_cache_removes_what_was_used_longest_ago_and_spares_what_is_in_use(cache: Path) -> None:
    objects = cache / "objects"
    objects.mkdir(parents=True)
    pack = cache / "packs"
    pack.mkdir()
    entries = {
        "old": [objects / "old.pt"],
        "pack": [pack / "k.images.npy", pack / "k.labels.npy", pack / "k.json"],
        "new": [objects / "new.pt"],
    }
    for age, files in zip((300, 200, 100), entries.values(), strict=True):
        for path in files:
            path.write_bytes(b"x" * 1000)
            os.utime(path, (path.stat().st_atime - age, path.stat().st_mtime - age))
    # Over the bound by one entry: the oldest goes, unless it is in use; a pack goes whole.
    assert filecache.cache_trim(limit=4000, keep=[objects / "old.pt"]) == 3000
    assert (objects / "old.pt").exists() and not any(p.exists() for p in entries["pack"])
    assert (objects / "new.pt").exists()
    assert filecache.cache_trim(limit=1000) == 1000 and not (objects / "old.pt").exists()


def test_fetching_beyond_the_bound_trims_the_cache(cache: Path, settings: Any) -> None:
    settings.WORKER_CACHE_MAX_BYTES = 2500
    first = filecache.stored_copy(_stored("x/1.bin", b"1" * 1000))
    os.utime(first, (0, 0))
    second = filecache.stored_copy(_stored("x/2.bin", b"2" * 1000))
    third = filecache.stored_copy(_stored("x/3.bin", b"3" * 1000))
    assert not first.exists() and second.exists() and third.exists()


def test_an_exact_store_replaces_what_a_killed_upload_left(media_root: Path, tmp_path: Path) -> None:
    _stored("packs/k.images.npy", b"half of it")
    local = tmp_path / "k.images.npy"
    local.write_bytes(b"all of it")
    assert filecache.store_file(local, "packs/k.images.npy", exact=True) == "packs/k.images.npy"
    assert default_storage.open("packs/k.images.npy").read() == b"all of it"
    # Without `exact`, a folder storage keeps the old file and stores the new one under another name.
    assert filecache.store_file(local, "packs/k.images.npy") != "packs/k.images.npy"


def test_content_addressed_names_are_stored_once(media_root: Path) -> None:
    made: list[int] = []

    def content() -> bytes:
        made.append(1)
        return b"png bytes"

    assert filecache.store_content_addressed("patches/1/abc.png", content) == "patches/1/abc.png"
    assert filecache.store_content_addressed("patches/1/abc.png", content) == "patches/1/abc.png"
    assert len(made) == 1  # the second time, the folder storage already held it: nothing encoded
    assert sorted(os.listdir(media_root / "patches" / "1")) == ["abc.png"]
