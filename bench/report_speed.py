"""The report page and the study builder, timed as a study manager meets them.

Builds a study of 20 readers x 200 items (4,000 answers, each taken through the answer service, so
the record is as a real study's), then times the report page: its first view (the figures computed),
then later views (the figures kept until the next answer), and a view after one more answer. Then it
times creating a new study through the builder. Targets: a later view under 300 ms, a new study under
1 s.

    python bench/report_speed.py                       # SQLite in a temporary folder
    python bench/report_speed.py --readers 20 --items 200 --database-url postgres://...
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def setup(database_url: str | None) -> None:
    folder = tempfile.mkdtemp(prefix="histoturing-report-bench-")
    os.environ.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + "x" * 40,
            "ALLOWED_HOSTS": "testserver",
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "LOG_LEVEL": "WARNING",
            "HISTOTURING_DATA_DIR": folder,
            "CELERY_TASK_ALWAYS_EAGER": "1",
        }
    )
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def timed(call: object, repeat: int = 1) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    setup(args.database_url)
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.test import Client
    from django.urls import reverse

    from core.services import user_create
    from gan import imaging
    from gan.models import Dataset, Patch, Source, patch_storage_name
    from turing.services import ArmSpec, StudySpec, answer_next, answer_submit, study_create

    rng = np.random.default_rng(0)
    pools = {}
    for source in (Source.REAL, Source.SYNTHETIC):
        dataset = Dataset.objects.create(name=f"bench {source}", source=source)
        for i in range(args.items):
            pixels = np.kron(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), np.ones((16, 16, 1), np.uint8))
            image = imaging.from_array(pixels)
            digest = imaging.content_hash(image)
            name = default_storage.save(
                patch_storage_name(dataset.pk, digest), ContentFile(imaging.encode_png(image))
            )
            Patch.objects.create(
                dataset=dataset, tissue_class="LYM", source=source, content_hash=digest, image=name, seed=i
            )
        pools[source] = dataset
    manager = user_create(username="manager", role="manager", validate=False)[0]
    readers = [
        user_create(username=f"r{i:02}", role="expert", validate=False)[0] for i in range(args.readers)
    ]
    spec = StudySpec(
        name="bench",
        real_datasets=[pools[Source.REAL]],
        arms=[ArmSpec("synthetic", [pools[Source.SYNTHETIC]], 1)],
        items_per_reader=args.items,
        ask_profile=False,
        planned_readers=args.readers,
    )
    study = study_create(spec=spec, readers=readers, created_by=manager)
    start = time.perf_counter()
    truth = dict(study.items.values_list("token", "truth"))
    for skill, reader in zip(rng.uniform(0.45, 0.7, args.readers), readers, strict=True):
        assignment = study.assignments.get(reader=reader)
        while (upcoming := answer_next(assignment=assignment)).token is not None:
            right = truth[upcoming.token]
            label = right if rng.random() < skill else ("real" if right == "synthetic" else "synthetic")
            conf = int(rng.integers(1, 6))
            answer_submit(
                study_id=study.pk, reader=reader, token=upcoming.token, label=label, confidence=conf
            )
    print(
        f"built {args.readers} readers x {args.items} items through the answer service in "
        f"{time.perf_counter() - start:.0f} s"
    )

    client = Client()
    client.force_login(manager)
    url = reverse("evaluation:study_report", args=[study.pk])

    def view() -> None:
        response = client.get(url)
        assert response.status_code == 200 and b"Record intact" in response.content, response.status_code

    first = timed(view)[0]
    later = timed(view, repeat=10)
    # One more answer (a reader's change would do the same): the record's head moves.
    extra = user_create(username="late", role="expert", validate=False)[0]
    from turing.services import study_invite

    assignment = study_invite(study=study, reader=extra)
    token = answer_next(assignment=assignment).token
    assert token is not None
    answer_submit(study_id=study.pk, reader=extra, token=token, label="real", confidence=3)
    after = timed(view)[0]
    print(f"report, first view: {first:.0f} ms")
    print(
        f"report, later views: median {statistics.median(later):.0f} ms, slowest {max(later):.0f} ms "
        f"(target: under 300 ms)"
    )
    print(f"report, first view after one more answer: {after:.0f} ms")

    builder = reverse("turing:study_new")
    form = {
        "name": "bench 2",
        "tissue_class": "LYM",
        "real_datasets": [pools[Source.REAL].pk],
        "synthetic_datasets": [pools[Source.SYNTHETIC].pk],
        "items_per_reader": args.items,
        "real_parts": 1,
        "synthetic_parts": 1,
        "same_items_for_all": "on",
        "ask_confidence": "on",
        "instructions": "Label it.",
        "readers": [r.pk for r in readers[:4]],
        "equivalence_margin": 0.1,
        "alpha": 0.05,
        "planned_readers": 4,
    }
    preview = timed(lambda: client.post(builder, form))[0]
    created = []
    for k in range(3):
        start = time.perf_counter()
        response = client.post(builder, form | {"name": f"bench {k + 2}", "create": "1"})
        created.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 302, response.content[:500]
    print(f"builder preview: {preview:.0f} ms")
    print(
        f"new study ({args.items} items, 4 readers) from the builder: "
        f"median {statistics.median(created):.0f} ms (target: under 1000 ms)"
    )


if __name__ == "__main__":
    main()
