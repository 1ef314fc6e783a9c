"""Everything an expert can reach in a mixed study, fetched and compared by the truth behind it."""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from gan.models import Dataset
from tests.images import png_chunk_types
from tests.turing.fixtures import arms_study, make_synthetic, study_for
from turing.models import Study, StudyItem
from turing.services import ProtocolOptions

pytestmark = pytest.mark.django_db


def _chunks(data: bytes) -> dict[bytes, bytes]:
    out, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        out.setdefault(kind, data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    return out


def _read_all(study: Study, expert: Any) -> tuple[list[Any], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """An expert reads the whole study through the pages and the API: the pages, each item's image
    (URL, headers, bytes) and every payload."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(expert)
    pages = [
        client.get(reverse("turing:my_studies")),
        client.get(reverse("turing:study_read", args=[study.pk])),
        client.get(reverse("turing:study_profile", args=[study.pk])),
    ]
    csrf = client.cookies["csrftoken"].value
    seen: dict[str, dict[str, Any]] = {}
    payloads: list[dict[str, Any]] = []
    if study.practice_items:
        pages += _practise(client, study, csrf, payloads)
        pages.append(client.get(reverse("turing:study_read", args=[study.pk]) + "?start=1"))
    upcoming = client.get(reverse("turing:api_next", args=[study.pk])).json()
    payloads.append(upcoming)
    while not upcoming["finished"]:
        token = upcoming["item"]["token"]
        image = client.get(upcoming["item"]["image_url"])
        seen[token] = {
            "url": upcoming["item"]["image_url"],
            "headers": sorted(image.headers.items()),
            "body": image.content,
        }
        response = client.post(
            reverse("turing:api_answer", args=[study.pk]),
            json.dumps({"token": token, "label": "real", "confidence": 3}),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=csrf,
        )
        assert response.status_code == 201
        payloads.append(response.json())
        upcoming = response.json()["next"]
    pages.append(client.get(reverse("turing:study_done", args=[study.pk])))
    return pages, seen, payloads


def _practise(client: Client, study: Study, csrf: str, payloads: list[dict[str, Any]]) -> list[Any]:
    """The practice phase: its page, and each practice patch's payload and image before its answer (the
    answer's reply tells the truth: that is what practice is for)."""
    pages = [client.get(reverse("turing:study_practice", args=[study.pk]))]
    upcoming = client.get(reverse("turing:api_practice_next", args=[study.pk])).json()
    images = []
    while not upcoming["finished"]:
        payloads.append(upcoming)
        image = client.get(upcoming["item"]["image_url"])
        images.append((tuple(sorted(image.headers.items())), len(image.content)))
        reply = client.post(
            reverse("turing:api_practice_answer", args=[study.pk]),
            json.dumps({"token": upcoming["item"]["token"], "label": "real"}),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=csrf,
        )
        upcoming = reply.json()["next"]
    assert len(set(images)) == 1  # practice images of both kinds alike, too
    return [*pages, client.get(reverse("turing:study_practice", args=[study.pk]))]


def _assert_blind(study: Study, expert: Any, words: set[str]) -> dict[str, dict[str, Any]]:
    """Nothing an expert receives differs by the item's truth or arm, and none of `words` (dataset and
    arm names) appears anywhere they can see."""
    pages, seen, payloads = _read_all(study, expert)
    truth = dict(StudyItem.objects.filter(study=study).values_list("token", "truth"))
    # URLs: the same shape for every item, and no primary key, file name or content hash in them.
    items = StudyItem.objects.select_related("patch").filter(study=study)
    secrets = {str(i.patch_id) for i in items} | {i.patch.content_hash for i in items}
    for info in seen.values():
        assert re.fullmatch(r"/i/[A-Za-z0-9_-]{22}", info["url"]), info["url"]
        assert not any(secret in info["url"] for secret in secrets if len(secret) > 3)
    # Headers: one identical set for every image (no Last-Modified, no ETag, the same length).
    assert len({tuple(info["headers"]) for info in seen.values()}) == 1
    header_names = {name.lower() for name, _ in next(iter(seen.values()))["headers"]}
    assert not header_names & {"last-modified", "etag", "content-disposition"}
    # Bytes: the same length, the same chunks, the same IHDR and zlib encoder settings; no metadata.
    bodies = {token: info["body"] for token, info in seen.items()}
    assert len({len(b) for b in bodies.values()}) == 1
    assert len({tuple(png_chunk_types(b)) for b in bodies.values()}) == 1
    assert set(png_chunk_types(next(iter(bodies.values())))) == {b"IHDR", b"IDAT", b"IEND"}
    assert len({_chunks(b)[b"IHDR"] for b in bodies.values()}) == 1
    assert len({_chunks(b)[b"IDAT"][:2] for b in bodies.values()}) == 1  # zlib header: level and window
    for body in bodies.values():
        assert len(zlib.decompress(_chunks(body)[b"IDAT"])) == 128 * (1 + 128 * 3)

    # API payloads: the same keys everywhere, and no field but our own label says real or synthetic.
    def keys(value: Any) -> Any:
        return {k: keys(v) for k, v in value.items()} if isinstance(value, dict) else None

    shapes = {
        json.dumps(keys(p.get("next", p)), sort_keys=True) for p in payloads if p.get("next", p)["preload"]
    }
    assert len(shapes) == 1  # the last two have no preload, or no item
    for payload in payloads:
        without_own_label = {k: v for k, v in payload.items() if k != "label"}
        text = json.dumps(without_own_label)
        assert "synthetic" not in text and '"real"' not in text and "truth" not in text
        assert not any(word in text for word in words), text
    # Pages: no token, patch id, dataset or arm name or truth in the HTML.
    for page in pages:
        html = page.content.decode()
        assert "truth" not in html and not any(word in html for word in words)
        assert not any(token in html for token in truth)
    return seen


def test_nothing_an_expert_receives_differs_by_source(study: Study, expert: Any) -> None:
    seen = _assert_blind(study, expert, {"synthetic LYM", "real LYM"})
    truth = dict(StudyItem.objects.filter(study=study).values_list("token", "truth"))
    assert {truth[t] for t in seen} == {"real", "synthetic"} and len(seen) == 10


def test_nothing_an_expert_receives_differs_by_arm(
    real_lym: Dataset, expert: Any, manager: Any, media_root: Path
) -> None:
    arm_sets = [make_synthetic(f"generator {k} set", 6, seed=k) for k in (1, 2)]
    arms = {"Kestrel": arm_sets[0], "Osprey": arm_sets[1]}
    study = arms_study(real_lym, arms, [expert], items_per_reader=12, created_by=manager)
    seen = _assert_blind(
        study, expert, {"Kestrel", "Osprey", "generator 1 set", "generator 2 set", "real LYM"}
    )
    arm = dict(StudyItem.objects.filter(study=study).values_list("token", "arm__name"))
    assert sorted(str(arm[t]) for t in seen) == ["Kestrel"] * 3 + ["None"] * 6 + ["Osprey"] * 3


def test_nothing_differs_by_source_with_practice_and_repeat_reads(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    options = ProtocolOptions(
        practice_items=4, practice_datasets=[real_lym, synthetic_lym], repeat_share=0.3, repeat_gap=3
    )
    study = study_for(real_lym, synthetic_lym, [expert], options=options)
    seen = _assert_blind(study, expert, {"synthetic LYM", "real LYM"})
    assert len(seen) == 13  # every item, and three repeat reads, each served by its own token


def test_stored_images_of_both_kinds_went_through_one_encoder(study: Study) -> None:
    for item in StudyItem.objects.select_related("patch").filter(study=study):
        with item.patch.image.open("rb") as handle:
            data = handle.read()
        assert set(png_chunk_types(data)) == {b"IHDR", b"IDAT", b"IEND"}
        assert _chunks(data)[b"IHDR"] == struct.pack(">IIBBBBB", 128, 128, 8, 2, 0, 0, 0)


def test_items_are_stored_in_an_order_that_says_nothing_of_their_truth(study: Study) -> None:
    truths = list(StudyItem.objects.filter(study=study).order_by("id").values_list("truth", flat=True))
    assert sorted(truths) == ["real"] * 5 + ["synthetic"] * 5
    assert truths != sorted(truths) and truths != sorted(truths, reverse=True)  # not in blocks
