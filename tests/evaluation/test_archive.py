"""The study archive: one download that verifies offline; `python -m evaluation.mrmc` on its ratings
gives the report's figures; each kind of edit inside it, even with its manifest made to match, is named."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from analysis import mrmc
from core.services import user_create
from evaluation import archive_check, selectors
from turing.models import Study
from turing.services import answer_next, answer_submit, reader_remove, study_invite

pytestmark = pytest.mark.django_db


def _read(study: Study, reader: Any, rng: np.random.Generator, skill: float) -> None:
    """A reader who is right with probability `skill`, with varied confidences."""
    assignment = study_invite(study=study, reader=reader)
    while not (upcoming := answer_next(assignment=assignment)).finished:
        truth = study.items.get(token=upcoming.token).truth
        other = "real" if truth == "synthetic" else "synthetic"
        label = truth if rng.random() < skill else other
        confidence = int(rng.integers(1, 6))
        answer_submit(
            study_id=study.pk, reader=reader, token=upcoming.token, label=label, confidence=confidence
        )


@pytest.fixture
def finished(study: Study, expert: Any) -> Study:
    """Five readers of the study's 10 items (one removed after reading), one who stopped halfway."""
    rng = np.random.default_rng(3)
    readers = [expert] + [
        user_create(username=f"reader-{i}", role="expert", validate=False)[0] for i in range(5)
    ]
    for reader, skill in zip(readers[:5], (0.9, 0.6, 0.5, 0.7, 0.55), strict=True):
        _read(study, reader, rng, skill)
    half = study_invite(study=study, reader=readers[5])
    for _ in range(4):
        token = answer_next(assignment=half).token
        answer_submit(study_id=study.pk, reader=readers[5], token=token, label="real", confidence=2)
    removed = study.assignments.get(reader=readers[4])
    reader_remove(study=study, assignment_id=removed.pk, reason="read with the wrong screen")
    return Study.objects.get(pk=study.pk)


def _download(client: Client, study: Study) -> bytes:
    response = client.get(reverse("evaluation:study_archive", args=[study.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["X-Record-Head"][:12] in response["Content-Disposition"]
    return response.content


def _files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(files: dict[str, bytes], *, fix_manifest: bool = True) -> bytes:
    """The archive with its files as given; with `fix_manifest`, a forger's manifest that matches them."""
    files = dict(files)
    if fix_manifest:
        manifest = json.loads(files["manifest.json"])
        manifest["files"] = {
            n: hashlib.sha256(d).hexdigest() for n, d in files.items() if n != "manifest.json"
        }
        files["manifest.json"] = json.dumps(manifest).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _verify(path: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_study", archive=path, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + err.getvalue() + str(exc)
    return 0, out.getvalue()


def test_a_finished_studys_archive_verifies_offline_and_holds_no_name(
    manager_client: Client, finished: Study, tmp_path: Path
) -> None:
    data = _download(manager_client, finished)
    path = tmp_path / "archive.zip"
    path.write_bytes(data)
    code, text = _verify(path)
    assert code == 0 and "intact" in text, text
    assert "ratings of 4 readers" in text  # the removed and the unfinished reader are not analysed
    files = _files(data)
    assert set(files) >= {
        "manifest.json",
        "protocol.json",
        "items.csv",
        "answers.csv",
        "events.csv",
        "record.jsonl",
        "ratings.csv",
        "analysis.json",
        "readers.csv",
        "README.txt",
    }
    everything = b"".join(files.values())
    assert b"expert-a" not in everything and b"reader-1" not in everything and b"@" not in everything
    items = list(csv.DictReader(io.StringIO(files["items.csv"].decode())))
    assert len(items) == 10 and all(i["content_hash"] and i["dataset"] and i["truth"] for i in items)


def test_the_ratings_file_gives_the_reports_figures(
    manager_client: Client, finished: Study, tmp_path: Path, capsys: Any
) -> None:
    files = _files(_download(manager_client, finished))
    analysis = json.loads(files["analysis.json"])
    (tmp_path / "ratings.csv").write_bytes(files["ratings.csv"])
    argv = [str(tmp_path / "ratings.csv"), "--json", "--margin", str(analysis["margin"])]
    assert mrmc.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    report = selectors.study_figures(study=finished).mrmc.result
    assert report is not None
    for figures in (printed, analysis["mrmc"]):
        assert figures["single"][0]["auc_mean"] == pytest.approx(report.single[0].auc_mean, abs=1e-12)
        assert figures["single"][0]["rrrc"]["low"] == pytest.approx(report.single[0].rrrc.low, abs=1e-12)
        assert figures["readers"] == report.readers
    assert printed["verdict"]["outcome"] == analysis["decision"]["outcome"]
    export = manager_client.get(reverse("evaluation:study_export", args=[finished.pk, "ratings"]))
    readers = {line.split(",")[0] for line in b"".join(export.streaming_content).decode().splitlines()[1:]}
    assert readers == {"R1", "R2", "R3", "R4", "R6"}  # R5 was removed: no statistic's input


def _answer_label(files: dict[str, bytes]) -> str:
    text = files["answers.csv"].decode()
    rows = list(csv.reader(io.StringIO(text)))
    column = rows[0].index("label")
    rows[1][column] = "synthetic" if rows[1][column] == "real" else "real"
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    files["answers.csv"] = out.getvalue().encode()
    reader, position = rows[1][rows[0].index("reader")], rows[1][rows[0].index("position")]
    return f"answers.csv: {reader}'s answer at position {position} differs from the record"


def _rating(files: dict[str, bytes]) -> str:
    lines = files["ratings.csv"].decode().split("\r\n")
    reader, modality, case, truth, rating = lines[1].split(",")
    lines[1] = ",".join([reader, modality, case, truth, str(11 - int(rating))])
    files["ratings.csv"] = "\r\n".join(lines).encode()
    return f"ratings.csv: {reader}'s rating {11 - int(rating)} of {case} is not the record's"


def _record_entry(files: dict[str, bytes]) -> str:
    lines = files["record.jsonl"].decode().splitlines()
    index = next(i for i, line in enumerate(lines) if '"kind":"answer"' in line)
    entry = json.loads(lines[index])
    entry["content"]["label"] = "real" if entry["content"]["label"] == "synthetic" else "synthetic"
    lines[index] = json.dumps(entry)
    files["record.jsonl"] = ("\n".join(lines) + "\n").encode()
    return f"record entry {entry['seq']} of chain {entry['chain']!r}: its content no longer matches its hash"


def _truth(files: dict[str, bytes]) -> str:
    rows = list(csv.reader(io.StringIO(files["items.csv"].decode())))
    rows[1][1] = "real" if rows[1][1] == "synthetic" else "synthetic"
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    files["items.csv"] = out.getvalue().encode()
    return f"item {rows[1][0]}'s truth"


def _figure(files: dict[str, bytes]) -> str:
    analysis = json.loads(files["analysis.json"])
    analysis["mrmc"]["single"][0]["auc_mean"] += 0.01
    files["analysis.json"] = json.dumps(analysis).encode()
    return "analysis.json mrmc.single[0].auc_mean"


def _head(files: dict[str, bytes]) -> str:
    manifest = json.loads(files["manifest.json"])
    manifest["record_head"] = "0" * 64
    files["manifest.json"] = json.dumps(manifest).encode()
    return "the manifest says " + "0" * 64


@pytest.mark.parametrize("edit", [_answer_label, _rating, _record_entry, _truth, _figure, _head])
def test_each_edit_inside_an_archive_is_named_even_with_a_matching_manifest(
    manager_client: Client, finished: Study, edit: Callable[[dict[str, bytes]], str], tmp_path: Path
) -> None:
    files = _files(_download(manager_client, finished))
    expected = edit(files)
    check = archive_check.archive_check(_zip(files))
    assert any(expected in line for line in check.problems), check.problems
    path = tmp_path / "edited.zip"
    path.write_bytes(_zip(files))
    code, text = _verify(path)
    assert code == 1 and expected in text


def test_an_edit_without_a_new_manifest_is_named_by_file(manager_client: Client, finished: Study) -> None:
    files = _files(_download(manager_client, finished))
    _rating(files)
    check = archive_check.archive_check(_zip(files, fix_manifest=False))
    assert "ratings.csv differs from the manifest's hash of it" in check.problems


def test_what_is_not_an_archive_is_said(tmp_path: Path) -> None:
    assert archive_check.archive_check(b"not a zip").problems == ["not a zip file"]
    path = tmp_path / "missing.zip"
    code, text = _verify(path)
    assert code == 2 and "missing.zip" in text
