"""Writes of the gan app: importing datasets, real or synthetic (training and sampling runs come in
gan.services.training and gan.services.sampling)."""

from __future__ import annotations

import json
import logging
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from core.filecache import StoredFileError, cache_root, file_sha256, store_content_addressed, stored_copy_to
from core.jobs import JobCancelled, JobError
from core.models import Job
from core.roles import UserLike, signed_in
from core.services import job_create, job_release_files
from gan import imaging
from gan.models import Dataset, Patch, SamplingRun, Source, patch_storage_name
from gan.signals import dataset_imported
from gan.sources import ImportSource, SourceError
from neural.config import DEFAULT_CLASSES, KNOWN_CLASSES

if TYPE_CHECKING:
    from core.jobs import JobContext

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
AbortFn = Callable[[], bool]
BATCH = 200


class DatasetImportError(ValueError):
    """The import cannot start; nothing was written."""


class ImportAborted(Exception):
    """The import was cancelled; what was imported before stays."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("import cancelled")
        self.report = report


@dataclass
class ImportReport:
    dataset_name: str
    source_path: str
    classes: list[str]
    source: str = Source.REAL
    size: int = imaging.PATCH_SIZE
    dataset_id: int | None = None
    imported: dict[str, int] = field(default_factory=dict)
    already_present: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    not_selected: dict[str, int] = field(default_factory=dict)
    empty_classes: list[str] = field(default_factory=list)

    @property
    def total_imported(self) -> int:
        return sum(self.imported.values())

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append({"path": path, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"total_imported": self.total_imported, "lines": self.lines()}

    def lines(self) -> list[str]:
        lines = [f"Dataset {self.dataset_name!r} ({self.source}, {self.size} px) from {self.source_path}"]
        for tissue_class in self.classes:
            new, old = self.imported.get(tissue_class, 0), self.already_present.get(tissue_class, 0)
            lines.append(f"  {tissue_class:<5} imported {new:>7,}   already present {old:>7,}")
        lines.append(f"  total imported {self.total_imported:,}, skipped {len(self.skipped):,}")
        for tissue_class, count in sorted(self.not_selected.items()):
            lines.append(f"  left out {count:,} file(s) of class {tissue_class} (not selected)")
        for folder in self.empty_classes:
            lines.append(f"  empty class folder: {folder}")
        for item in self.skipped:
            lines.append(f"  skipped {item['path']}: {item['reason']}")
        return lines


GENERATOR_KINDS = ("GAN", "diffusion", "other")


@dataclass(frozen=True)
class Generator:
    """Where a synthetic set came from, kept in its dataset's provenance under "generator". Sampling runs
    inside the product fill the same record (`gan.services.sampling`)."""

    name: str
    kind: str = "other"  # one of GENERATOR_KINDS
    description: str = ""
    checkpoint_sha256: str = ""  # of the weights file, when the importer has it
    sampling: dict[str, Any] = field(default_factory=dict)  # truncation, steps, guidance, seeds, ...
    origin: str = ""  # where the images came from (a path, a URL, "sampled in histoturing")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def generator_describe(
    *,
    name: str,
    kind: str = "other",
    description: str = "",
    checkpoint_file: Path | None = None,
    sampling: str | dict[str, Any] = "",
    origin: str = "",
) -> Generator:
    """A `Generator` from what an importer typed, or DatasetImportError naming each problem."""
    problems = []
    name = name.strip()
    if not name:
        problems.append("a synthetic import needs the generator's name")
    kinds = {k.lower(): k for k in GENERATOR_KINDS}
    if kind.strip().lower() not in kinds:
        problems.append(f"unknown generator kind {kind!r}: use one of {', '.join(GENERATOR_KINDS)}")
    settings_: Any = sampling
    if isinstance(sampling, str):
        try:
            settings_ = json.loads(sampling) if sampling.strip() else {}
        except json.JSONDecodeError as exc:
            problems.append(f"the sampling settings are not valid JSON: {exc}")
            settings_ = {}
        except RecursionError:
            problems.append("the sampling settings are nested too deeply to be read")
            settings_ = {}
    if not isinstance(settings_, dict):
        problems.append('the sampling settings must be a JSON object, e.g. {"truncation": 0.7}')
        settings_ = {}
    digest = ""
    if checkpoint_file is not None:
        try:
            digest = file_sha256(Path(checkpoint_file))
        except OSError as exc:
            problems.append(f"cannot read the checkpoint file {checkpoint_file}: {exc.strerror or exc}")
    if problems:
        raise DatasetImportError("; ".join(problems))
    return Generator(
        name=name,
        kind=kinds[kind.strip().lower()],
        description=description.strip(),
        checkpoint_sha256=digest,
        sampling=settings_,
        origin=origin.strip(),
    )


def _validate_size(size: int) -> int:
    problem = imaging.size_problem(size)
    if problem:
        raise DatasetImportError(problem)
    return size


def _validate_classes(classes: Sequence[str] | None) -> tuple[str, ...]:
    if not classes:
        return DEFAULT_CLASSES
    chosen = tuple(dict.fromkeys(c.strip().upper() for c in classes if c.strip()))
    unknown = [c for c in chosen if c not in KNOWN_CLASSES]
    if unknown:
        raise DatasetImportError(
            f"unknown tissue class(es) {', '.join(unknown)}: choose from {', '.join(KNOWN_CLASSES)}"
        )
    if not chosen:
        raise DatasetImportError("no tissue class selected")
    return chosen


@contextmanager
def _open_source(path: Path, classes: tuple[str, ...]) -> Iterator[ImportSource]:
    try:
        source = ImportSource(path, classes).__enter__()
    except SourceError as exc:
        raise DatasetImportError(str(exc)) from None
    try:
        yield source
    finally:
        source.__exit__(None, None, None)


def _default_name(path: Path) -> str:
    return path.stem if path.suffix.lower() == ".zip" else path.name


def dataset_import(
    *,
    path: Path,
    name: str | None = None,
    classes: Sequence[str] | None = None,
    created_by: UserLike | None = None,
    is_demo: bool = False,
    progress: ProgressFn | None = None,
    should_abort: AbortFn | None = None,
    generator: Generator | None = None,
    size: int | None = imaging.PATCH_SIZE,
    source_microns_per_pixel: float | None = None,
    source_label: str | None = None,
) -> ImportReport:
    """Import a folder or zip laid out like NCT-CRC-HE-100K into the dataset `name`: real patches, or
    synthetic ones when `generator` says what made them. Every patch becomes `size` x `size` px; `None`
    keeps the images' own size (the first square image's; larger ones are downsampled to it, smaller
    ones refused, as always).

    `source_microns_per_pixel`: the source images' resolution (NCT-CRC-HE-100K: 0.5 at 224 px); the
    dataset records its patches' resolution after resampling, for the reading page's scale bar.
    `source_label`: what the dataset says it was imported from, where `path` is a worker's own copy
    (an upload: the file's name as sent, not the cache path it was fetched to).

    Idempotent: a patch whose pixels are already in the dataset is counted, not stored again.
    Every file that cannot be imported gets a line in the report; the rest goes on, and each
    batch is committed as it is done, so a later failure loses nothing imported before it.
    """
    chosen = _validate_classes(classes)
    size = None if size is None else _validate_size(size)
    if source_microns_per_pixel is not None and not 0 < source_microns_per_pixel < 100:
        raise DatasetImportError(f"a resolution of {source_microns_per_pixel} µm/px is not plausible")
    source_kind = Source.SYNTHETIC if generator is not None else Source.REAL
    path = Path(path)
    dataset_name = (name or _default_name(path)).strip()
    if not dataset_name:
        raise DatasetImportError("the dataset needs a name")
    existing = Dataset.objects.filter(name=dataset_name).first()
    if existing is not None and size is not None:
        _check_into(existing, source_kind, size)

    with _open_source(path, chosen) as source:
        listing = source.listing
        if size is None:
            size = existing.patch_size if existing is not None else _native_size(source, listing.files)
            if existing is not None:
                _check_into(existing, source_kind, size)
        report = ImportReport(
            dataset_name=dataset_name,
            source_path=str(path),
            classes=list(chosen),
            source=source_kind,
            size=size,
        )
        for problem_path, reason in listing.problems:
            report.skip(problem_path, reason)
        report.not_selected = dict(listing.not_selected)
        report.empty_classes = list(listing.empty_classes)
        if not listing.files and not listing.problems and not listing.not_selected:
            raise DatasetImportError(f"no image files found in {path}")
        if not listing.files:
            return report

        imported_from = source_label or str(path)
        provenance: dict[str, Any] = {
            "imported_from": imported_from,
            "resampling": imaging.RESAMPLE_NAME,
            "size": size,
            "pipeline_version": imaging.PIPELINE_VERSION,
        }
        if generator is not None:
            provenance["generator"] = generator.as_dict() | {"origin": generator.origin or imported_from}
        dataset = existing or Dataset.objects.create(
            name=dataset_name,
            source=source_kind,
            patch_size=size,
            is_demo=is_demo,
            created_by=signed_in(created_by),
            provenance=provenance,
        )
        report.dataset_id = dataset.pk
        if source_microns_per_pixel is not None and dataset.microns_per_pixel is None:
            _record_resolution(dataset, source, listing.files, source_microns_per_pixel)
        known_hashes = set(dataset.patches.values_list("content_hash", flat=True))
        total = len(listing.files)
        pending: list[Patch] = []
        for index, item in enumerate(source.files(), start=1):
            if should_abort is not None and index % 50 == 0 and should_abort():
                _commit(pending)
                raise ImportAborted(report)
            patch = _import_one(source, item, dataset, known_hashes, report)
            if patch is not None:
                pending.append(patch)
            if len(pending) >= BATCH:
                _commit(pending)
            if progress is not None:
                progress(index, total)
        _commit(pending)
    return report


def _native_size(source: ImportSource, files: Sequence[Any], tries: int = 20) -> int:
    """The images' own size: that of the first square image whose header reads (of the first `tries`)."""
    for item in files[:tries]:
        try:
            found = imaging.image_size(source.read(item))
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error):
            continue
        if found is not None and found[0] == found[1]:
            return _validate_size(found[0])
    raise DatasetImportError(
        "no square image among the first files to take the size from: give a patch size instead"
    )


def _import_one(
    source: ImportSource, item: Any, dataset: Dataset, known_hashes: set[str], report: ImportReport
) -> Patch | None:
    try:
        data = source.read(item)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        report.skip(item.path, f"could not be read: {exc}")
        return None
    try:
        decoded = imaging.decode_patch(data, max_pixels=settings.IMPORT_MAX_PIXELS, size=dataset.patch_size)
    except imaging.ImageRejected as exc:
        report.skip(item.path, str(exc))
        return None
    digest = imaging.content_hash(decoded.image)
    if digest in known_hashes:
        report.already_present[item.tissue_class] = report.already_present.get(item.tissue_class, 0) + 1
        return None
    known_hashes.add(digest)
    # Named by content: a re-run after a crash finds the file and does not store a second copy.
    storage_name = store_content_addressed(
        patch_storage_name(dataset.pk, digest), lambda: imaging.encode_png(decoded.image)
    )
    report.imported[item.tissue_class] = report.imported.get(item.tissue_class, 0) + 1
    return Patch(
        dataset=dataset,
        tissue_class=item.tissue_class,
        source=dataset.source,
        content_hash=digest,
        image=storage_name,
        original_name=item.path[-500:],
        provenance={"format": decoded.source_format, "size": list(decoded.source_size)},
    )


def _record_resolution(dataset: Dataset, source: ImportSource, files: Sequence[Any], microns: float) -> None:
    """The stored patches' resolution: the source's, scaled by the first readable image's resampling."""
    for item in files[:20]:
        try:
            decoded = imaging.decode_patch(
                source.read(item), max_pixels=settings.IMPORT_MAX_PIXELS, size=dataset.patch_size
            )
        except (OSError, imaging.ImageRejected):
            continue
        dataset.microns_per_pixel = microns * decoded.source_size[0] / dataset.patch_size
        dataset.save(update_fields=["microns_per_pixel"])
        return


def _check_into(existing: Dataset, source: str, size: int) -> None:
    """A dataset holds one kind of patch at one size: an import that would mix them is refused."""
    if existing.source != source:
        other = "" if source == Source.SYNTHETIC else ", or import these images as synthetic"
        raise DatasetImportError(
            f"dataset {existing.name!r} holds {existing.source} patches: a {source} import cannot go into "
            f"it (choose another name{other})"
        )
    if SamplingRun.objects.filter(dataset=existing).exists():
        raise DatasetImportError(
            f"dataset {existing.name!r} is the output of a sampling run: import into a new dataset"
        )
    if existing.patch_size != size:
        raise DatasetImportError(
            f"dataset {existing.name!r} holds {existing.patch_size} px patches, this import asks for "
            f"{size} px: one dataset holds one size"
        )


def _commit(pending: list[Patch]) -> None:
    if not pending:
        return
    with transaction.atomic():
        # ignore_conflicts: a concurrent import of the same files must not fail the batch.
        Patch.objects.bulk_create(pending, ignore_conflicts=True)
    pending.clear()


# --- Imports as background jobs ----------------------------------------------------------------


def import_path_resolve(*, relative: str) -> Path:
    """A folder or zip below IMPORT_ROOT, named by a study manager on the import page."""
    root = settings.IMPORT_ROOT.resolve()
    candidate = (root / relative.strip().lstrip("/")).resolve()
    if candidate != root and root not in candidate.parents:
        raise DatasetImportError(f"{relative!r} is outside the import folder {root}")
    if not candidate.exists():
        raise DatasetImportError(f"{relative!r} does not exist in the import folder {root}")
    return candidate


def dataset_import_start(
    *,
    path: Path,
    name: str | None,
    classes: Sequence[str] | None,
    created_by: UserLike | None,
    delete_source_after: bool = False,
    stored_upload: str | None = None,
    generator: Generator | None = None,
    size: int | None = imaging.PATCH_SIZE,
    source_microns_per_pixel: float | None = None,
    upload_name: str | None = None,
) -> Job:
    """Check what can be checked now, then queue the import as a job (`size` None: the images' own).

    `path`: a folder or archive on the worker's disk (under the import folder); `stored_upload`: an
    uploaded archive's name in storage instead, owned by the job."""
    chosen = _validate_classes(classes)
    size = None if size is None else _validate_size(size)
    if source_microns_per_pixel is not None and not 0 < source_microns_per_pixel < 100:
        raise DatasetImportError(f"a resolution of {source_microns_per_pixel} µm/px is not plausible")
    dataset_name = name or _default_name(path)
    existing = Dataset.objects.filter(name=dataset_name).first()
    if existing is not None and size is not None:
        _check_into(existing, Source.SYNTHETIC if generator else Source.REAL, size)
    what = f"synthetic set of {generator.name}" if generator else "real patches"
    return job_create(
        kind="import",
        task_name="gan.dataset_import",
        title=f"Import {dataset_name} ({what})",
        params={
            "path": str(path),
            "name": dataset_name,
            "classes": list(chosen),
            "generator": generator.as_dict() if generator else None,
            "size": size,
            "microns_per_pixel": source_microns_per_pixel,
            # An uploaded archive belongs to the job: removed when it ends, however it ends.
            "owned_files": [str(path)] if delete_source_after else [],
            "stored_upload": stored_upload,
            "upload_name": upload_name,
            "owned_stored_files": [stored_upload] if stored_upload else [],
        },
        created_by=created_by,
    )


def dataset_import_upload(
    *,
    archive: UploadedFile,
    name: str,
    classes: Sequence[str] | None,
    created_by: UserLike | None,
    generator: Generator | None = None,
    size: int | None = imaging.PATCH_SIZE,
    source_microns_per_pixel: float | None = None,
) -> Job:
    """Store an uploaded zip in storage (`uploads/`) and queue its import; the job owns the stored file
    from then on (removed when it ends, however it ends), and a refused import removes it at once. A
    worker on another host fetches it from storage: the web host's disk is never shared."""
    stored = default_storage.save(f"uploads/{uuid.uuid4().hex}.zip", archive)
    sent_as = (archive.name or "upload.zip").replace("\\", "/").rsplit("/", 1)[-1][:200]
    try:
        return dataset_import_start(
            path=Path(stored),
            name=name or sent_as.removesuffix(".zip"),
            upload_name=sent_as,
            classes=classes,
            created_by=created_by,
            stored_upload=stored,
            generator=generator,
            size=size,
            source_microns_per_pixel=source_microns_per_pixel,
        )
    except DatasetImportError:
        default_storage.delete(stored)
        raise


def dataset_import_job(job: Job, context: JobContext) -> dict[str, Any]:
    """The body of the import task: run the import with live progress, then clean up an upload."""
    params = job.params
    stored_upload = params.get("stored_upload")
    if stored_upload:
        path = cache_root() / "uploads" / f"job-{job.pk}.zip"
        try:
            stored_copy_to(stored_upload, path)
        except StoredFileError as exc:
            job_release_files(job=job)
            raise JobError(f"the uploaded archive is gone: {exc}") from None
    else:
        path = Path(params["path"])

    def progress(done: int, total: int) -> None:
        context.progress(done / max(total, 1), f"{done:,} of {total:,} files", {"done": done, "total": total})

    try:
        report = dataset_import(
            path=path,
            name=params.get("name"),
            classes=params.get("classes"),
            created_by=job.created_by,
            generator=Generator(**params["generator"]) if params.get("generator") else None,
            size=params.get("size", imaging.PATCH_SIZE),  # None: the images' own size
            source_microns_per_pixel=params.get("microns_per_pixel"),
            source_label=f"upload {params.get('upload_name') or 'of a zip'}" if stored_upload else None,
            progress=progress,
            should_abort=context.should_abort,
        )
    except DatasetImportError as exc:
        raise JobError(str(exc)) from None
    except ImportAborted:
        raise JobCancelled from None
    finally:
        if params.get("delete_source_after"):  # jobs queued before `owned_files` existed
            path.unlink(missing_ok=True)
        if stored_upload:
            path.unlink(missing_ok=True)  # the local copy; the stored upload goes with the job's files
        job_release_files(job=job)
    if report.dataset_id is not None:
        dataset_imported.send(sender=Dataset, dataset=Dataset.objects.get(pk=report.dataset_id))
    return report.as_dict()
