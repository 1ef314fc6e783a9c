"""A study's archive: one zip a reviewer can check offline (`evaluation.archive_check`).

It holds the protocol as frozen, the items (token, truth, arm, content hash, dataset, source file), the
readers as pseudonyms, the answers, the audit trail, the record's every entry, the ratings the primary
analysis read and the analysis itself, with a manifest of every file's SHA-256 and the record's head.
No user name and no e-mail address is in it.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from analysis import chain, mrmc, stats
from evaluation import exports, selectors
from evaluation.csv_export import csv_dict_lines, csv_lines
from turing.models import Study
from turing.selectors import reader_pseudonyms

FORMAT = "histoturing study archive 1"
PRIMARY = "synthetic vs real"  # the primary analysis's one treatment (`analysis.stats.turing_mrmc`)
ITEM_COLUMNS = [
    "token",
    "truth",
    "arm",
    "content_hash",
    "dataset",
    "source_file",
    "patch_id",
    "checkpoint_step",
]
READER_COLUMNS = ["assignment", "reader", "removed", "finished"]

README = """A histoturing study archive: study {study} ({name}), made {made} UTC.

Check it offline, with no database:
    python manage.py verify_study --archive {file}
or by hand: every file's SHA-256 is in manifest.json; record.jsonl is the study's hash chain
(an entry's hash is SHA-256 of the previous hash, a newline and its content as JSON with sorted keys
and no spaces; the record's head is SHA-256 of the JSON list of [chain, length, last hash] per chain,
sorted by chain), whose head must equal the one in manifest.json, the report and every export made at
the same time. protocol.json's hash is SHA-256 of its protocol in the same JSON form.

The primary analysis again:
    python -m evaluation.mrmc ratings.csv --json --margin {margin} --alpha {alpha}
gives the figures in analysis.json (the report's).
"""


def _csv(rows: Any) -> bytes:
    return "".join(csv_lines(rows)).encode()


def _items(study: Study) -> bytes:
    rows = study.items.order_by("token").values_list(
        "token",
        "truth",
        "arm__name",
        "patch__content_hash",
        "patch__dataset__name",
        "patch__original_name",
        "patch_id",
        "patch__sampling_run__checkpoint__step",
    )
    return _csv([ITEM_COLUMNS, *([t, truth, arm or "", *rest] for t, truth, arm, *rest in rows)])


def _readers(study: Study) -> bytes:
    names = reader_pseudonyms(study=study)
    rows = study.assignments.order_by("id").values_list("id", "removed_at", "finished_at")
    return _csv(
        [
            READER_COLUMNS,
            *([pk, names[pk], int(removed is not None), int(done is not None)] for pk, removed, done in rows),
        ]
    )


def _record(study: Study) -> tuple[bytes, str, int]:
    lines, heads = [], {}
    for entry in study.record.order_by("chain", "seq"):
        fields = {"chain": entry.chain, "seq": entry.seq, "kind": entry.kind, "content": entry.content}
        lines.append(chain.canonical(fields | {"prev": entry.prev, "hash": entry.hash}))
        heads[entry.chain] = (entry.seq + 1, entry.hash)
    return "".join(f"{line}\n" for line in lines).encode(), chain.record_head(heads), len(lines)


def _analysis(study: Study) -> tuple[bytes, bytes]:
    """The ratings the primary analysis read (the readers it analysed) and the analysis."""
    records = selectors.study_records(study=study)
    result = selectors.study_figures(study=study, records=records)
    analysed = set(result.mrmc.readers) if result.mrmc.result is not None else set()
    ratings = [
        [
            r.reader,
            PRIMARY,
            r.item,
            1 if r.truth == stats.SYNTHETIC else 0,
            stats.rating(r.label, r.confidence),
        ]
        for r in sorted(records, key=lambda r: (r.reader, r.item))
        if r.reader in analysed
    ]
    protocol = result.protocol
    analysis = result.mrmc.result
    decision = (
        None
        if analysis is None
        else mrmc.decision_dict(
            mrmc.decide(
                analysis.single[0], len(analysis.readers), margin=protocol.margin, alpha=protocol.alpha
            )
        )
    )
    verdict = result.verdict
    data = {
        "alpha": protocol.alpha,
        "margin": protocol.margin,
        "readers_analysed": sorted(analysed),
        "readers_left_out": result.mrmc.excluded,
        "reason": result.mrmc.reason,
        "mrmc": None if analysis is None else analysis.as_dict(),
        "decision": None if decision is None else mrmc.plain(decision),
        "verdict": {"kind": verdict.kind, "headline": verdict.headline, "rule": verdict.rule},
    }
    return _csv([exports.RATINGS_COLUMNS, *ratings]), json.dumps(data, indent=2, allow_nan=False).encode()


@dataclass(frozen=True)
class Archive:
    name: str  # its file name, with the record's head
    data: bytes  # the zip
    record_head: str


def study_archive(*, study: Study) -> Archive:
    """The study's archive as it stands now."""
    made = timezone.now()
    record, head, entries = _record(study)
    ratings, analysis = _analysis(study)
    name = f"study-{study.pk}-archive-{head[:12]}.zip"
    protocol = {
        "protocol": study.protocol,
        "protocol_hash": study.protocol_hash,
        "frozen_at": study.frozen_at.isoformat() if study.frozen_at else None,
    }
    files = {
        "protocol.json": json.dumps(protocol, indent=2, sort_keys=True).encode(),
        "items.csv": _items(study),
        "readers.csv": _readers(study),
        "answers.csv": _csv([exports.TIDY_COLUMNS, *exports.tidy_answer_rows(study=study)]),
        "events.csv": "".join(
            csv_dict_lines(exports.AUDIT_COLUMNS, exports.audit_rows(study=study))
        ).encode(),
        "record.jsonl": record,
        "ratings.csv": ratings,
        "analysis.json": analysis,
    }
    files["README.txt"] = README.format(
        study=study.pk,
        name=study.name,
        made=f"{made:%Y-%m-%d %H:%M}",
        file=name,
        margin=study.equivalence_margin,
        alpha=study.alpha,
    ).encode()
    manifest = {
        "format": FORMAT,
        "study": study.pk,
        "name": study.name,
        "made_at": made.isoformat(),
        "protocol_hash": study.protocol_hash,
        "record_head": head,
        "record_entries": entries,
        "files": {n: hashlib.sha256(data).hexdigest() for n, data in sorted(files.items())},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        for file_name, data in files.items():
            archive.writestr(file_name, data)
    return Archive(name, buffer.getvalue(), head)
