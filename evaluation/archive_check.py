"""Checking a study's archive offline (`evaluation.archive`), with no database and no Django: what a
reviewer runs (`python manage.py verify_study --archive FILE.zip`, or `python -m
evaluation.archive_check FILE.zip`) on the one download.

Each check names what it found: a file that differs from the manifest; a break in the record's hash
chain or a head that is not the manifest's; a protocol that is not its hash; an item whose truth, arm or
content differs from the protocol; an answer in the exports that differs from the record; ratings that
are not the record's answers; an analysis that the ratings do not give again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis import chain, mrmc, stats

TOLERANCE = 1e-9  # relative: the analysis again, in another order of summation


@dataclass
class ArchiveCheck:
    problems: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)  # what was checked, for the intact message

    @property
    def intact(self) -> bool:
        return not self.problems


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def _close(a: Any, b: Any, path: str, out: list[str]) -> None:
    """Every difference between two JSON values beyond the tolerance, by its path."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            _close(a.get(key), b.get(key), f"{path}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]", out)
    elif isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        if not math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE):
            out.append(f"{path}: {b!r} in the archive, {a!r} recomputed")
    elif a != b:
        out.append(f"{path}: {b!r} in the archive, {a!r} recomputed")


def _record(
    files: Mapping[str, bytes], manifest: Mapping[str, Any], check: ArchiveCheck
) -> list[chain.Entry]:
    entries = []
    for line_no, line in enumerate(files["record.jsonl"].decode().splitlines(), start=1):
        try:
            row = json.loads(line)
            entries.append(
                chain.Entry(row["chain"], row["seq"], row["kind"], row["content"], row["prev"], row["hash"])
            )
        except (ValueError, KeyError, TypeError):
            check.problems.append(f"record.jsonl, line {line_no}: not a record entry")
    problems, heads = chain.chain_problems(entries)
    check.problems += problems
    head = chain.record_head(heads)
    if head != manifest.get("record_head"):
        check.problems.append(f"the record's head is {head}, the manifest says {manifest.get('record_head')}")
    check.facts.append(f"{len(entries)} record entries in {len(heads)} chains, head {head}")
    return entries


def _protocol(files: Mapping[str, bytes], manifest: Mapping[str, Any], check: ArchiveCheck) -> dict[str, Any]:
    kept = json.loads(files["protocol.json"])
    protocol, stated = kept.get("protocol") or {}, kept.get("protocol_hash", "")
    if stated != manifest.get("protocol_hash"):
        check.problems.append("protocol.json's hash is not the manifest's")
    if not protocol:
        check.facts.append("the protocol was kept only as its hash (frozen before it was kept): not checked")
        return {}
    if hashlib.sha256(chain.canonical(protocol).encode()).hexdigest() != stated:
        check.problems.append("the protocol in protocol.json is not the protocol its hash was made of")
    by_token = {row[0]: row[1:] for row in protocol.get("items", [])}
    seen = set()
    for row in _rows(files["items.csv"]):
        token = row["token"]
        seen.add(token)
        if token not in by_token:
            check.problems.append(f"item {token} is not in the protocol")
            continue
        for what, frozen, now in zip(
            ("content hash", "truth", "arm"),
            by_token[token],
            (row["content_hash"], row["truth"], row["arm"]),
            strict=True,
        ):
            if frozen != now:
                check.problems.append(
                    f"item {token}'s {what}: {frozen!r} in the protocol, {now!r} in items.csv"
                )
    for token in sorted(set(by_token) - seen):
        check.problems.append(f"item {token} of the protocol is missing from items.csv")
    check.facts.append(f"protocol {stated[:12]} and its {len(by_token)} items")
    return protocol


def _answers(
    files: Mapping[str, bytes], entries: Sequence[chain.Entry], check: ArchiveCheck
) -> tuple[dict[str, dict[str, Any]], dict[str, str], set[str]]:
    """The record's last state of every answer, by reader pseudonym; the exported answers against it."""
    readers = _rows(files["readers.csv"])
    pseudonym = {f"reader {r['assignment']}": r["reader"] for r in readers}
    removed = {r["reader"] for r in readers if r["removed"] == "1"}
    states: dict[str, dict[str, Any]] = {}
    for entry in sorted(entries, key=lambda e: (e.chain, e.seq)):  # a later state supersedes
        if entry.kind == "answer":
            states[f"{pseudonym.get(entry.chain, entry.chain)}|{entry.content['position']}"] = dict(
                entry.content
            )
    exported = 0
    for row in _rows(files["answers.csv"]):
        exported += 1
        key = f"{row['reader']}|{int(row['position']) - 1}"  # the export counts from 1
        state = states.get(key)
        if state is None:
            check.problems.append(
                f"answers.csv: {row['reader']}'s answer at position {row['position']} is not in the record"
            )
            continue
        confidence = "" if state["confidence"] is None else str(state["confidence"])
        if (row["label"], row["confidence"], row["item_token"]) != (
            state["label"],
            confidence,
            state["item"],
        ):
            check.problems.append(
                f"answers.csv: {row['reader']}'s answer at position {row['position']} differs from the record"
            )
    if exported != len(states):
        check.problems.append(f"answers.csv holds {exported} answers, the record {len(states)}")
    return states, pseudonym, removed


def _ratings(
    files: Mapping[str, bytes],
    protocol: Mapping[str, Any],
    states: Mapping[str, Mapping[str, Any]],
    removed: set[str],
    analysis: Mapping[str, Any],
    check: ArchiveCheck,
) -> None:
    """ratings.csv must be the record's first reads by the readers analysed, by the one rating rule."""
    truth = {row[0]: row[2] for row in protocol.get("items", [])}
    analysed = set(analysis.get("readers_analysed") or [])
    expected = set()
    by_reader: dict[str, dict[str, Any]] = {}
    for key, state in states.items():
        reader = key.partition("|")[0]
        if state["read"] == 1 and state["label"] is not None:
            by_reader.setdefault(reader, {})[state["item"]] = state
    complete = {r for r, got in by_reader.items() if truth and set(truth) <= set(got) and r not in removed}
    if complete != analysed:
        check.problems.append(
            f"the analysis names readers {sorted(analysed)}, while the record's complete readers are "
            f"{sorted(complete)}"
        )
    for reader in complete:
        for token, state in by_reader[reader].items():
            if token in truth:
                synthetic = truth[token] == stats.SYNTHETIC
                expected.add(
                    (reader, token, int(synthetic), stats.rating(state["label"], state["confidence"]))
                )
    given = {
        (r["reader"], r["case"], int(r["truth"]), int(float(r["rating"])))
        for r in _rows(files["ratings.csv"])
    }
    for row in sorted(given - expected)[:20]:
        check.problems.append(f"ratings.csv: {row[0]}'s rating {row[3]} of {row[1]} is not the record's")
    for row in sorted(expected - given)[:20]:
        check.problems.append(f"ratings.csv lacks {row[0]}'s rating of {row[1]}")
    check.facts.append(f"{len(given)} ratings of {len(complete)} readers, as the record gives them")


def _analysis(files: Mapping[str, bytes], analysis: Mapping[str, Any], check: ArchiveCheck) -> None:
    """The analysis again from ratings.csv, as `python -m evaluation.mrmc` computes it."""
    if analysis.get("mrmc") is None:
        check.facts.append(f"no analysis to recompute ({analysis.get('reason') or 'none was possible'})")
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ratings.csv"
        path.write_bytes(files["ratings.csv"])
        try:
            ratings, truth, mask, treatments, readers = mrmc.read_csv(path)
            result = mrmc.analyse(
                ratings,
                truth,
                case_mask=mask,
                treatments=treatments,
                readers=readers,
                alpha=analysis["alpha"],
            )
        except mrmc.MRMCDesignError as exc:
            check.problems.append(f"ratings.csv cannot be analysed: {exc}")
            return
    differences: list[str] = []
    _close(result.as_dict(), analysis["mrmc"], "analysis.json mrmc", differences)
    decision = mrmc.plain(
        mrmc.decision_dict(
            mrmc.decide(
                result.single[0], len(result.readers), margin=analysis["margin"], alpha=analysis["alpha"]
            )
        )
    )
    _close(decision, analysis["decision"], "analysis.json decision", differences)
    check.problems += differences[:20]
    single = result.single[0]
    check.facts.append(
        f"the analysis again from ratings.csv: mean AUC {single.auc_mean:.4f}, verdict {decision['outcome']}"
    )


def archive_check(data: bytes) -> ArchiveCheck:
    """Every check of an archive's bytes; `intact` when none found a difference."""
    check = ArchiveCheck()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            files = {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:
        check.problems.append("not a zip file")
        return check
    if "manifest.json" not in files:
        check.problems.append("no manifest.json: not a study archive")
        return check
    manifest = json.loads(files.pop("manifest.json"))
    listed = manifest.get("files", {})
    for name in sorted(set(listed) | set(files)):
        if name not in files:
            check.problems.append(f"{name} is missing")
        elif name not in listed:
            check.problems.append(f"{name} is not in the manifest")
        elif hashlib.sha256(files[name]).hexdigest() != listed[name]:
            check.problems.append(f"{name} differs from the manifest's hash of it")
    needed = (
        "record.jsonl",
        "protocol.json",
        "items.csv",
        "readers.csv",
        "answers.csv",
        "ratings.csv",
        "analysis.json",
    )
    if any(name not in files for name in needed):
        return check
    entries = _record(files, manifest, check)
    protocol = _protocol(files, manifest, check)
    states, _pseudonym, removed = _answers(files, entries, check)
    analysis = json.loads(files["analysis.json"])
    _ratings(files, protocol, states, removed, analysis, check)
    _analysis(files, analysis, check)
    return check


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m evaluation.archive_check STUDY-ARCHIVE.zip", file=sys.stderr)
        return 2
    try:
        data = Path(args[0]).read_bytes()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    check = archive_check(data)
    for line in check.problems:
        print(f"changed: {line}", file=sys.stderr)
    for line in check.facts:
        print(f"checked: {line}")
    print("intact" if check.intact else f"{len(check.problems)} difference(s)")
    return 0 if check.intact else 1


if __name__ == "__main__":
    sys.exit(main())
