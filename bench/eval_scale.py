"""Evaluation at scale: statistics and CSV export of 100 readers x 5,000 items (500,000 answers).

Builds a throw-away PostgreSQL database (`histoturing_eval_bench`), then measures in fresh child
processes (so that peak memory is the phase's own): the study's statistics (every figure of the
report page, the MRMC analysis and verdict included), the MRMC analysis alone (from the answers, and
the OR computation on the ratings array), and the tidy-answers CSV export streamed to nowhere, with
rows per second and peak RSS.

    python bench/eval_scale.py                      # 100 x 5,000
    python bench/eval_scale.py --readers 20 --items 1000
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from argparse import ArgumentParser, RawDescriptionHelpFormatter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/histoturing_eval_bench"
UNUSABLE = "!"  # Django's marker of an unusable password: the bench's readers never log in


def setup_django(database_url: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + "x" * 40,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "LOG_LEVEL": "WARNING",
            "HISTOTURING_DATA_DIR": os.environ.get("HISTOTURING_DATA_DIR")
            or tempfile.mkdtemp(prefix="histoturing-eval-bench-"),
        }
    )
    import django

    django.setup()


def build(args: argparse.Namespace) -> None:
    import psycopg

    name = args.database_url.rsplit("/", 1)[1]
    with psycopg.connect(args.database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    setup_django(args.database_url)
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from gan.models import Dataset, Patch, Source
    from turing.models import Answer, Assignment, Study, StudyItem
    from turing.services.items import order_draw

    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    half = args.items // 2
    patches = []
    for source in (Source.REAL, Source.SYNTHETIC):
        dataset = Dataset.objects.create(name=f"eval {source}", source=source)
        # Rows only: statistics and exports never open the image files.
        patches += Patch.objects.bulk_create(
            Patch(
                dataset=dataset,
                tissue_class="LYM",
                source=source,
                content_hash=f"{source[0]}{i:063d}",
                image=f"patches/none/{source}-{i}.png",
                seed=i if source == Source.SYNTHETIC else None,
            )
            for i in range(half)
        )
    study = Study.objects.create(name="eval scale", items_per_reader=args.items)
    items = StudyItem.objects.bulk_create(StudyItem(study=study, patch=p, truth=p.source) for p in patches)
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"reader{i:03}", password=UNUSABLE) for i in range(args.readers)
    )
    rng = np.random.default_rng(0)
    tokens = {item.pk: item.token for item in items}
    now = timezone.now()
    for user in users:
        assignment = Assignment.objects.create(study=study, reader=user, seed=int(rng.integers(2**62)))
        assignment.order = order_draw(tokens, assignment.seed)
        assignment.save(update_fields=["order"])
        by_token = {item.token: item for item in items}
        # Readers call real patches real 55% of the time and synthetic ones synthetic 33% (the paper).
        answers = []
        for position, token in enumerate(assignment.order):
            item = by_token[token]
            p_real = 0.55 if item.truth == "real" else 0.67
            label = "real" if rng.random() < p_real else "synthetic"
            answers.append(
                Answer(
                    assignment=assignment,
                    item=item,
                    position=position,
                    label=label,
                    confidence=int(rng.integers(1, 6)),
                    shown_at=now,
                    answered_at=now,
                )
            )
        Answer.objects.bulk_create(answers, batch_size=5000)
    print(
        f"built {args.readers} readers x {args.items} items = {args.readers * args.items:,} answers "
        f"in {time.perf_counter() - start:.0f} s"
    )


def _scale_study(args: argparse.Namespace) -> Any:
    """The study `phase_build` made, in a process set up for Django."""
    setup_django(args.database_url)
    from turing.models import Study

    return Study.objects.get(name="eval scale")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_stats(args: argparse.Namespace) -> None:
    study = _scale_study(args)
    from analysis import mrmc, stats
    from evaluation import selectors

    start = time.perf_counter()
    records = selectors.study_records(study=study)
    loaded = time.perf_counter()
    result = selectors.study_figures(study=study, records=records)
    done = time.perf_counter()
    peak = _peak_rss_mb()
    print(
        f"statistics: {done - start:.2f} s ({loaded - start:.2f} s reading {len(records):,} answers, "
        f"{done - loaded:.2f} s computing every figure); peak RSS {peak:.0f} MB; "
        f"pooled real {result.pooled.real.share:.3f}, "
        f"synthetic {result.pooled.synthetic.share:.3f}, Fleiss {result.fleiss.value:.4f}, "
        f"{len(result.cohen):,} Cohen pairs; verdict: {result.verdict.kind}"
    )
    cases = list(study.items.values_list("token", flat=True))
    begin = time.perf_counter()
    analysis = stats.turing_mrmc(records, cases=cases)
    from_answers = time.perf_counter() - begin
    assert analysis.result is not None
    readers, n = analysis.readers, len(cases)
    truth_of = {r.item: r.truth == stats.SYNTHETIC for r in records}
    index = {c: k for k, c in enumerate(cases)}
    row = {name: i for i, name in enumerate(readers)}
    ratings = np.zeros((1, len(readers), n))
    for r in records:
        ratings[0, row[r.reader], index[r.item]] = stats.rating(r.label, r.confidence)
    truth = np.array([truth_of[c] for c in cases])
    begin = time.perf_counter()
    core = mrmc.analyse(ratings, truth)
    core_s = time.perf_counter() - begin
    single = core.single[0]
    print(
        f"MRMC ({len(readers)} readers x {n:,} items): {from_answers:.2f} s from the answers (ratings, "
        f"labels-only analysis included), {core_s:.2f} s for the OR analysis of the ratings array; "
        f"mean AUC {single.auc_mean:.4f}, RRRC 95% CI {single.rrrc.low:.4f} to {single.rrrc.high:.4f}"
    )


def phase_export(args: argparse.Namespace) -> None:
    study = _scale_study(args)
    from evaluation import exports
    from evaluation.csv_export import csv_lines

    start = time.perf_counter()
    rows = size = 0
    for line in csv_lines(exports.tidy_answer_rows(study=study)):
        rows += 1
        size += len(line)
    elapsed = time.perf_counter() - start
    peak = _peak_rss_mb()
    print(
        f"tidy CSV export: {rows:,} rows, {size / 1e6:.0f} MB in {elapsed:.2f} s = "
        f"{rows / elapsed:,.0f} rows/s; peak RSS {peak:.0f} MB"
    )


def main() -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--phase", choices=("all", "build", "stats", "export"), default="all")
    args = parser.parse_args()
    if args.phase == "build":
        build(args)
    elif args.phase == "stats":
        phase_stats(args)
    elif args.phase == "export":
        phase_export(args)
    else:
        for phase in ("build", "stats", "export"):
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--phase",
                    phase,
                    "--readers",
                    str(args.readers),
                    "--items",
                    str(args.items),
                    "--database-url",
                    args.database_url,
                ],
                check=True,
            )


if __name__ == "__main__":
    main()
