"""Fetching NCT-CRC-HE-100K from its Zenodo record: resumable, checksum-checked. No Django here.

The record's JSON lists each file with its size, checksum ("md5:<hex>") and download link. A
partial download is kept as `<file>.part` and continued with an HTTP Range request.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FILE = "NCT-CRC-HE-100K.zip"
RECORD_PAGE = "https://zenodo.org/records/1214456"
CHUNK = 1024 * 1024


class DownloadError(RuntimeError):
    """The download cannot be done; the message says why and what to do instead."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    algorithm: str
    checksum: str
    url: str


def _offline_message(url: str, exc: BaseException) -> str:
    return (
        f"cannot reach {url} ({exc}): this machine seems to have no internet access. "
        f"Download {DEFAULT_FILE} from {RECORD_PAGE} on a machine that has, copy it here and run "
        f"`python manage.py import_patches /path/to/{DEFAULT_FILE}`."
    )


def _open(
    url: str, *, headers: dict[str, str] | None = None, timeout: float = 30.0
) -> urllib.response.addinfourl:
    request = urllib.request.Request(url, headers={"User-Agent": "histoturing", **(headers or {})})  # noqa: S310
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url} answered HTTP {exc.code} {exc.reason}") from None
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
        raise DownloadError(_offline_message(url, exc)) from None


def record_file(*, record_url: str, filename: str = DEFAULT_FILE) -> RemoteFile:
    """Look the file up in the record's metadata."""
    with _open(record_url) as response:
        try:
            record = json.load(response)
        except ValueError:
            raise DownloadError(f"{record_url} did not answer with JSON") from None
    for entry in record.get("files", []):
        if entry.get("key") == filename:
            algorithm, _, checksum = str(entry.get("checksum", "")).partition(":")
            links = entry.get("links", {})
            url = links.get("content") or links.get("self")
            if not (algorithm and checksum and url):
                raise DownloadError(f"the record's entry for {filename} lacks a checksum or a link")
            return RemoteFile(filename, int(entry.get("size", 0)), algorithm, checksum, url)
    names = ", ".join(str(e.get("key")) for e in record.get("files", []))
    raise DownloadError(f"{filename} is not in the record (it holds: {names or 'nothing'})")


def _digest(path: Path, algorithm: str) -> str:
    try:
        hasher = hashlib.new(algorithm)
    except ValueError:
        raise DownloadError(f"unknown checksum algorithm {algorithm!r}") from None
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            hasher.update(block)
    return hasher.hexdigest()


def download(
    *,
    record_url: str,
    dest_dir: Path,
    filename: str = DEFAULT_FILE,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Download (or finish downloading) `filename` into `dest_dir`; returns the verified file."""
    remote = record_file(record_url=record_url, filename=filename)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / filename
    if final.exists() and _digest(final, remote.algorithm) == remote.checksum:
        return final
    partial = dest_dir / (filename + ".part")
    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with _open(remote.url, headers=headers, timeout=60.0) as response:
        resumed = offset > 0 and response.status == 206
        if not resumed:
            offset = 0
        mode = "ab" if resumed else "wb"
        done = offset
        try:
            with partial.open(mode) as out:
                while block := response.read(CHUNK):
                    out.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, remote.size)
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(
                f"download interrupted at {done:,} bytes ({exc}): run it again to resume"
            ) from None
    if remote.size and done < remote.size:
        raise DownloadError(
            f"download interrupted at {done:,} of {remote.size:,} bytes: run it again to resume"
        )
    actual = _digest(partial, remote.algorithm)
    if actual != remote.checksum:
        partial.unlink()
        raise DownloadError(
            f"checksum mismatch for {filename}: expected {remote.algorithm}:{remote.checksum}, got {actual}; "
            "the partial file was removed, run it again"
        )
    partial.replace(final)
    return final
