"""Item images: made once, served as stored bytes, fetched only so often."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from gan import imaging
from turing.models import StudyItem, StudyItemImage
from turing.services import answer_next

pytestmark = pytest.mark.django_db


def test_every_item_has_its_blinded_bytes_from_the_start(study: Any) -> None:
    items = list(StudyItem.objects.select_related("patch").filter(study=study))
    stored = dict(StudyItemImage.objects.filter(item__study=study).values_list("item_id", "png"))
    assert set(stored) == {item.pk for item in items}
    for item in items:
        with item.patch.image.open("rb") as handle:
            assert bytes(stored[item.pk]) == imaging.blinded_png(handle.read())


def test_serving_an_image_decodes_nothing(study: Any, expert_client: Client, monkeypatch: Any) -> None:
    token = answer_next(assignment=study.assignments.get()).token

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an image was decoded or encoded on the request path")

    for name in ("decode_png_array", "encode_png_blinded", "encode_png", "blinded_png"):
        monkeypatch.setattr(imaging, name, refuse)
    with CaptureQueriesContext(connection) as queries:
        response = expert_client.get(reverse("turing:item_image", args=[token]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert len(response.content) == 49_353  # stored zlib blocks: one length for every 128 px patch
    assert len(queries) <= 7  # session, user, item, assignment, its repeat shown?, fetch count, bytes


def test_too_many_fetches_of_one_item_answer_429_for_every_item_alike(
    study: Any, expert_client: Client, settings: Any
) -> None:
    settings.ITEM_IMAGE_FETCH_LIMIT = 3
    truth = dict(StudyItem.objects.filter(study=study).values_list("token", "truth"))
    tokens = {kind: next(t for t, k in truth.items() if k == kind) for kind in ("real", "synthetic")}
    refused = {}
    for kind, token in tokens.items():
        url = reverse("turing:item_image", args=[token])
        assert [expert_client.get(url).status_code for _ in range(3)] == [200, 200, 200]
        refused[kind] = expert_client.get(url)
        assert refused[kind].status_code == 429
    assert refused["real"].content == refused["synthetic"].content
    assert sorted(refused["real"].headers.items()) == sorted(refused["synthetic"].headers.items())
    other = next(t for t in truth if t not in tokens.values())
    assert expert_client.get(reverse("turing:item_image", args=[other])).status_code == 200  # per item


def test_a_new_window_allows_fetches_again(study: Any, expert_client: Client, settings: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from turing.models import ImageFetch

    settings.ITEM_IMAGE_FETCH_LIMIT = 2
    token = StudyItem.objects.filter(study=study).values_list("token", flat=True).first()
    url = reverse("turing:item_image", args=[token])
    assert [expert_client.get(url).status_code for _ in range(3)] == [200, 200, 429]
    ImageFetch.objects.update(
        window_start=timezone.now() - timedelta(seconds=settings.ITEM_IMAGE_FETCH_WINDOW_S + 1)
    )
    assert expert_client.get(url).status_code == 200


def test_postgresql_keeps_the_bytes_uncompressed(db: None) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("TOAST compression is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'png'",
            [StudyItemImage._meta.db_table],
        )
        assert cursor.fetchone()[0] == "e"  # EXTERNAL: out of line, never compressed
