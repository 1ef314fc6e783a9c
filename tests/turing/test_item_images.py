"""Item images: made once, served as stored bytes, fetched only so often."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from gan import imaging
from gan.models import Dataset
from tests.turing.fixtures import builder_form, study_for
from turing.models import Study, StudyItem, StudyItemImage
from turing.services import answer_next, study_protocol
from turing.services.items import item_transform

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


def test_the_eight_symmetries_are_distinct_and_each_keeps_every_pixel() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    shown = [imaging.symmetry(pixels, k) for k in range(imaging.SYMMETRIES)]
    assert np.array_equal(shown[0], pixels)
    assert len({s.tobytes() for s in shown}) == 8
    assert all(sorted(s.reshape(-1, 3).tolist()) == sorted(pixels.reshape(-1, 3).tolist()) for s in shown)


def test_equal_transforms_turn_every_item_alike_and_a_real_patch_no_longer_matches_its_original(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    """Built through the builder with the option: each item's bytes are its patch in the symmetry its
    token and the study's seed give, for real and synthetic items alike; the setting is in the protocol;
    a real patch looked up pixel for pixel in its dataset is found only where the draw left it as is."""
    data = builder_form(real_lym, synthetic_lym, expert, items_per_reader=16, equal_transforms="on")
    assert manager_client.post(reverse("turing:study_new"), data | {"create": "1"}).status_code == 302
    study = Study.objects.get()
    assert study.equal_transforms and study_protocol(study=study)["settings"]["equal_transforms"] is True
    drawn: dict[str, list[int]] = {"real": [], "synthetic": []}
    matches = 0
    for item in StudyItem.objects.select_related("patch", "image").filter(study=study):
        k = item_transform(study, item.token)
        drawn[item.truth].append(k)
        with item.patch.image.open("rb") as handle:
            original = imaging.decode_png_array(handle.read())
        shown = imaging.decode_png_array(bytes(item.image.png))
        assert np.array_equal(shown, imaging.symmetry(original, k))
        matches += int(np.array_equal(shown, original))
    assert matches == drawn["real"].count(0) + drawn["synthetic"].count(0) < 16
    assert len(set(drawn["real"])) > 2 and len(set(drawn["synthetic"])) > 2  # not one turn for a kind


def test_without_the_option_an_item_is_shown_as_stored(study: Study) -> None:
    assert not study.equal_transforms
    assert {item_transform(study, t) for t in study.items.values_list("token", flat=True)} == {0}


def test_a_patch_file_swapped_in_storage_stops_the_build(real_lym: Dataset, synthetic_lym: Dataset) -> None:
    """Whoever can write to the media store can put another picture under a patch's name; the build
    checks every file it reads against the content hash the patch was imported with."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from turing.services import StudyError

    other = real_lym.patches.order_by("id").first()
    assert other is not None
    with default_storage.open(other.image.name, "rb") as handle:
        real_bytes = handle.read()
    swapped = set()
    for victim in synthetic_lym.patches.all():  # every one, so that whichever is drawn is caught
        default_storage.delete(victim.image.name)
        default_storage.save(victim.image.name, ContentFile(real_bytes))
        swapped.add(victim.pk)
    before = Study.objects.count()
    with pytest.raises(
        StudyError, match=r"patch (\d+)'s stored image .* is not the picture it was imported as"
    ) as caught:
        study_for(real_lym, synthetic_lym)
    assert int(str(caught.value).split()[1].split("'")[0]) in swapped
    assert Study.objects.count() == before
