"""Reading an import source (a folder or a .zip laid out like NCT-CRC-HE-100K). No Django here.

Layout: `[any top folders/]<CLASS>/<file>`; the class is the name of the folder that holds the file.
Zip members are read into memory and never extracted, so a member whose path escapes the archive
(`../x`, `/etc/x`) cannot write anywhere: it is refused and listed.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from neural.config import KNOWN_CLASSES

# NCT-CRC-HE-100K's nine tissue classes, and the paper's eight training classes (all but BACK): the
# one list of classes of the whole project.
# The paper's output: 2,534 synthetic LYM patches (the default count of a sampling run).
PAPER_SYNTHETIC_COUNT = 2534
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
# A single member larger than this is not a patch (a 224x224 RGB TIFF is about 150 kB).
MAX_MEMBER_BYTES = 64 * 1024 * 1024


class SourceError(ValueError):
    """The source as a whole cannot be imported (missing, not a folder or zip, empty)."""


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the source root, POSIX separators
    tissue_class: str
    size: int
    _zip_name: str | None = None
    _file: Path | None = None

    def read(self, archive: zipfile.ZipFile | None) -> bytes:
        if self._file is not None:
            return self._file.read_bytes()
        assert archive is not None and self._zip_name is not None
        with archive.open(self._zip_name) as handle:
            return handle.read(MAX_MEMBER_BYTES + 1)


@dataclass
class SourceListing:
    """Every candidate file, plus what was set aside while listing, each with a reason."""

    files: list[SourceFile] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    not_selected: dict[str, int] = field(default_factory=dict)  # class -> files left out
    empty_classes: list[str] = field(default_factory=list)


def _classify(
    parts: tuple[str, ...], size: int, classes: tuple[str, ...], listing: SourceListing
) -> str | None:
    """The class of a file from its relative path parts, or None (with the reason recorded)."""
    path = "/".join(parts)
    name = parts[-1]
    if any(part.startswith(".") or part == "__MACOSX" for part in parts):
        listing.problems.append((path, "hidden or system file"))
        return None
    if not name.lower().endswith(IMAGE_SUFFIXES):
        listing.problems.append((path, "not an image file (expected .tif, .tiff, .png, .jpg or .jpeg)"))
        return None
    if len(parts) < 2:
        listing.problems.append((path, "not inside a class folder (expected <CLASS>/<file>)"))
        return None
    folder = parts[-2]
    tissue_class = folder.upper()
    if tissue_class not in KNOWN_CLASSES:
        listing.problems.append(
            (path, f"unknown class folder {folder!r} (known: {', '.join(KNOWN_CLASSES)})")
        )
        return None
    if tissue_class not in classes:
        listing.not_selected[tissue_class] = listing.not_selected.get(tissue_class, 0) + 1
        return None
    if size > MAX_MEMBER_BYTES:
        listing.problems.append((path, f"file of {size:,} bytes is too large for a patch"))
        return None
    return tissue_class


def _safe_member_parts(name: str) -> tuple[str, ...] | None:
    """The parts of a zip member's path, or None if it would escape the archive's root."""
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = PurePosixPath(name).parts
    if any(part in ("..", "") for part in parts):
        return None
    return tuple(parts)


def list_folder(root: Path, classes: tuple[str, ...]) -> SourceListing:
    listing = SourceListing()
    seen_class_folders: dict[str, int] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_symlink():
            listing.problems.append((relative.as_posix(), "symbolic link: not followed"))
            continue
        if path.is_dir():
            if path.name.upper() in classes and path.name.upper() in KNOWN_CLASSES:
                seen_class_folders.setdefault(relative.as_posix(), 0)
            continue
        parent = relative.parent.as_posix()
        if parent in seen_class_folders:
            seen_class_folders[parent] += 1
        size = path.stat().st_size
        tissue_class = _classify(relative.parts, size, classes, listing)
        if tissue_class is not None:
            listing.files.append(SourceFile(relative.as_posix(), tissue_class, size, _file=path))
    listing.empty_classes = sorted(folder for folder, count in seen_class_folders.items() if count == 0)
    return listing


def list_zip(archive: zipfile.ZipFile, classes: tuple[str, ...]) -> SourceListing:
    listing = SourceListing()
    class_folders: dict[str, int] = {}
    for info in archive.infolist():
        parts = _safe_member_parts(info.filename)
        if parts is None:
            listing.problems.append((info.filename, "path escapes the archive's root: refused"))
            continue
        if not parts:  # "." or "./": names nothing
            listing.problems.append((info.filename, "empty member name"))
            continue
        if info.is_dir():
            if parts and parts[-1].upper() in classes:
                class_folders.setdefault("/".join(parts), 0)
            continue
        folder = "/".join(parts[:-1])
        class_folders[folder] = class_folders.get(folder, 0) + 1
        tissue_class = _classify(parts, info.file_size, classes, listing)
        if tissue_class is not None:
            listing.files.append(
                SourceFile("/".join(parts), tissue_class, info.file_size, _zip_name=info.filename)
            )
    listing.empty_classes = sorted(
        folder
        for folder, count in class_folders.items()
        if count == 0 and folder.split("/")[-1].upper() in classes
    )
    return listing


class ImportSource:
    """A folder or a zip, opened for the duration of an import (`with ImportSource(path) as source`)."""

    def __init__(self, path: Path, classes: tuple[str, ...]) -> None:
        self.path = path
        self.classes = classes
        self._archive: zipfile.ZipFile | None = None
        self.listing = SourceListing()

    def __enter__(self) -> ImportSource:
        if not self.path.exists():
            raise SourceError(f"{self.path} does not exist")
        if self.path.is_dir():
            self.listing = list_folder(self.path, self.classes)
        elif zipfile.is_zipfile(self.path):
            try:
                self._archive = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise SourceError(f"{self.path} is not a readable zip: {exc}") from None
            self.listing = list_zip(self._archive, self.classes)
        else:
            raise SourceError(f"{self.path} is neither a folder nor a .zip archive")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._archive is not None:
            self._archive.close()

    def files(self) -> Iterator[SourceFile]:
        yield from self.listing.files

    def read(self, item: SourceFile) -> bytes:
        data = item.read(self._archive)
        if len(data) > MAX_MEMBER_BYTES:
            raise OSError(f"more than {MAX_MEMBER_BYTES:,} bytes once decompressed")
        return data
