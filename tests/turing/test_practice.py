"""The practice phase: patches from named pools, never in the test set, the truth after each answer,
excluded from every statistic and export, and a clear start of the blinded test."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from evaluation.selectors import study_records
from gan.models import Dataset
from tests.turing.fixtures import (
    builder_form,
    make_patches,
    make_synthetic,
    plan_problems,
    plan_study,
    study_for,
)
from tests.turing.test_api import _csrf_client
from turing.models import PracticeAnswer, Study
from turing.services import ArmSpec, ProtocolOptions, StudyError

pytestmark = pytest.mark.django_db


def _practising(real: Dataset, synthetic: Dataset, expert: Any, *, same: bool = True, n: int = 4) -> Study:
    options = ProtocolOptions(practice_items=n, practice_datasets=[real, synthetic])
    return study_for(real, synthetic, [expert], name="practice", same_items_for_all=same, options=options)


def _post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(
        url, body, content_type="application/json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
    )


@pytest.mark.parametrize("same", [True, False])
def test_practice_patches_are_half_real_and_never_in_the_test_set(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any, same: bool
) -> None:
    study = _practising(real_lym, synthetic_lym, expert, same=same, n=6)
    practice = list(study.practice.values_list("patch_id", "truth"))
    assert sorted(t for _, t in practice) == ["real"] * 3 + ["synthetic"] * 3
    test_patches = set(study.items.values_list("patch_id", flat=True))
    assert test_patches and not test_patches & {p for p, _ in practice}
    assignment = study.assignments.get()
    assert sorted(assignment.practice_order) == sorted(study.practice.values_list("token", flat=True))
    assert not set(assignment.practice_order) & set(assignment.order)


def test_the_plan_names_what_a_practice_phase_lacks(real_lym: Dataset, synthetic_lym: Dataset) -> None:
    def problems(**options: Any) -> list[str]:
        return plan_problems(real_lym, synthetic_lym, **options)

    assert problems(practice_items=4) == ["A practice phase needs the pools its patches come from."]
    only_real = problems(practice_items=4, practice_datasets=[real_lym])
    assert only_real == ["The practice phase asks for 2 synthetic LYM patches, but its pools hold 0."]
    # Practice takes 6 of the 12 synthetic patches the arm also draws from: 5 are needed, 6 remain.
    assert problems(practice_items=12, practice_datasets=[real_lym, synthetic_lym]) == []
    # 14 practice patches leave 5 of 12 synthetic ones; the test needs 7 with a 3:7 ratio.
    crowded = problems(
        practice_items=14, practice_datasets=[real_lym, synthetic_lym], real_parts=3, synthetic_parts=7
    )
    assert crowded == [
        "The study asks for 7 synthetic LYM items per reader, but the synthetic pool holds 5 LYM patches."
    ]
    with pytest.raises(StudyError, match="needs the pools"):
        study_for(real_lym, synthetic_lym, options=ProtocolOptions(practice_items=2))


def test_practice_by_the_api_tells_the_truth_after_each_answer_in_order(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any, other_expert: Any
) -> None:
    study = _practising(real_lym, synthetic_lym, expert)
    client = _csrf_client(expert)
    next_url = reverse("turing:api_practice_next", args=[study.pk])
    answer_url = reverse("turing:api_practice_answer", args=[study.pk])
    first = client.get(next_url).json()
    assert first["total"] == 4 and first["item"]["image_url"].startswith("/p/")
    assert "truth" not in first and "real" not in str(first) and "synthetic" not in str(first)
    order = study.assignments.get().practice_order
    out_of_order = _post(client, answer_url, {"token": order[1], "label": "real"})
    assert out_of_order.status_code == 409
    truths = dict(study.practice.values_list("token", "truth"))
    for position, token in enumerate(order):
        image = client.get(reverse("turing:practice_image", args=[token]))
        assert image.status_code == 200 and image["Content-Type"] == "image/png"
        assert (
            _csrf_client(other_expert).get(reverse("turing:practice_image", args=[token])).status_code == 404
        )
        reply = _post(client, answer_url, {"token": token, "label": "real", "confidence": 3}).json()
        assert reply["truth"] == truths[token] and reply["correct"] == (truths[token] == "real")
        assert reply["next"]["answered"] == position + 1
    assert reply["next"]["finished"] is True
    again = _post(client, answer_url, {"token": order[0], "label": "synthetic"}).json()
    assert again["label"] == "real"  # a repeated submit returns the first answer; practice has no changes
    assert PracticeAnswer.objects.filter(assignment__study=study).count() == 4


def test_the_reading_flow_runs_practice_first_then_says_the_blinded_test_begins(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    study = _practising(real_lym, synthetic_lym, expert, n=2)
    client = _csrf_client(expert)
    read_url = reverse("turing:study_read", args=[study.pk])
    practice_url = reverse("turing:study_practice", args=[study.pk])
    intro = client.get(read_url).content.decode()
    assert "2 practice patches" in intro and practice_url in intro
    assert client.get(read_url + "?start=1")["Location"] == practice_url  # practice cannot be skipped
    page = client.get(practice_url).content.decode()
    assert 'data-practice="1"' in page and "not part of the study's results" in page
    for token in study.assignments.get().practice_order:
        _post(
            client, reverse("turing:api_practice_answer", args=[study.pk]), {"token": token, "label": "real"}
        )
    over = client.get(practice_url).content.decode()
    assert "Practice is over" in over and "1 of 2" in over and "The blinded test begins now" in over
    test_page = client.get(read_url + "?start=1").content.decode()
    assert "The blinded test: from here on no answer is marked right or wrong" in test_page
    assert 'data-practice="1"' not in test_page


def test_practice_answers_are_in_no_statistic_or_export(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any, manager_client: Client
) -> None:
    study = _practising(real_lym, synthetic_lym, expert)
    client = _csrf_client(expert)
    for token in study.assignments.get().practice_order:
        _post(
            client, reverse("turing:api_practice_answer", args=[study.pk]), {"token": token, "label": "real"}
        )
    first = client.get(reverse("turing:api_next", args=[study.pk])).json()["item"]["token"]
    _post(client, reverse("turing:api_answer", args=[study.pk]), {"token": first, "label": "synthetic"})
    records = study_records(study=study)
    assert [r.item for r in records] == [first]
    export = manager_client.get(reverse("evaluation:study_export", args=[study.pk, "answers"]))
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    practice_tokens = set(study.practice.values_list("token", flat=True))
    assert [row["item_token"] for row in rows] == [first] and not practice_tokens & {
        r["item_token"] for r in rows
    }


def test_a_practice_pool_of_another_size_is_refused(real_lym: Dataset, synthetic_lym: Dataset) -> None:
    big = make_synthetic("big", 4)
    big.patch_size = 256
    big.save()
    problems = plan_problems(real_lym, synthetic_lym, practice_items=2, practice_datasets=[real_lym, big])
    assert any("mix patch sizes" in p and "big" in p for p in problems)


def test_the_builder_makes_a_study_with_practice_and_repeat_reads_and_copies_them(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    data = builder_form(
        real_lym, synthetic_lym, expert, items_per_reader=10, practice_items=4, repeat_share=0.2, repeat_gap=3
    )
    refused = manager_client.post(reverse("turing:study_new"), data | {"preview": "1"}).content.decode()
    assert "A practice phase needs the pools its patches come from." in refused
    data["practice_datasets"] = [real_lym.pk, synthetic_lym.pk]
    created = manager_client.post(reverse("turing:study_new"), data | {"create": "1"})
    study = Study.objects.get()
    assert created["Location"] == reverse("turing:study_detail", args=[study.pk])
    assert study.practice.count() == 4 and study.repeat_share == 0.2 and study.assignments.get().total == 12
    detail = manager_client.get(created["Location"]).content.decode()
    assert "Practice: 4 patches" in detail and "Repeat reads: 20%" in detail
    copy = manager_client.get(reverse("turing:study_new") + f"?copy={study.pk}").content.decode()
    assert 'name="practice_items" value="4"' in copy and 'name="repeat_share" value="0.2"' in copy


def test_practice_and_test_never_share_an_image_whatever_dataset_holds_it(
    synthetic_lym: Dataset, expert: Any
) -> None:
    """Two datasets of the same pictures: practice from one, the test's real pool the other. Practice
    shows each patch's truth, so no test item may show an image practice showed."""
    first = make_patches("real, first copy", 12, source="real", seed=3)
    second = make_patches("real, second copy", 12, source="real", seed=3)
    options = ProtocolOptions(practice_items=8, practice_datasets=[first, synthetic_lym])
    plan = plan_study(
        tissue_class="LYM",
        real_datasets=[second],
        arms=[ArmSpec("synthetic", [synthetic_lym])],
        items_per_reader=16,
        options=options,
    )
    assert plan.real_available == 8 and any(
        "the same images as 8 patches" in w for w in plan.warnings
    )  # 4 real, 4 synthetic
    study = study_for(second, synthetic_lym, [expert], items_per_reader=16, options=options)
    practice = set(study.practice.values_list("patch__content_hash", flat=True))
    test = set(study.items.values_list("patch__content_hash", flat=True))
    assert len(practice) == 8 and len(test) == 16 and not practice & test
