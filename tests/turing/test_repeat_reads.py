"""Repeat reads: a share of each reader's items read a second time (after K others, or after a washout),
excluded from the primary analysis and counted in the within-reader agreement."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from sklearn.metrics import cohen_kappa_score

from evaluation.selectors import repeat_read_pairs, study_records, study_statistics
from gan.models import Dataset
from tests.turing.fixtures import plan_problems, study_for
from tests.turing.test_api import _csrf_client
from turing.models import Answer, Study
from turing.services import ProtocolOptions, assignment_order_audit, repeat_order

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("seed", range(20))
def test_each_repeat_comes_after_at_least_k_other_items(seed: int) -> None:
    order = [f"t{i}" for i in range(30)]
    repeated = repeat_order(order, repeats=9, gap=7, washout=False, seed=seed)
    assert len(repeated) == 39 and sorted(set(repeated)) == sorted(order)
    seconds = [t for t in order if repeated.count(t) == 2]
    assert len(seconds) == 9
    for token in seconds:
        first, second = (i for i, t in enumerate(repeated) if t == token)
        assert second - first - 1 >= 7  # other items between the two reads
    firsts = []
    for t in repeated:
        if t not in firsts:
            firsts.append(t)
    assert firsts == order  # first reads keep the reader's order


def test_with_a_washout_the_repeats_are_a_second_session_of_their_own_order() -> None:
    order = [f"t{i}" for i in range(20)]
    repeated = repeat_order(order, repeats=5, gap=10, washout=True, seed=3)
    assert repeated[:20] == order and set(repeated[20:]) < set(order) and len(set(repeated[20:])) == 5
    assert repeat_order(order, repeats=0, gap=10, washout=True, seed=3) == order


def test_the_plan_names_impossible_repeat_settings(real_lym: Dataset, synthetic_lym: Dataset) -> None:
    def problems(**options: Any) -> list[str]:
        return plan_problems(real_lym, synthetic_lym, **options)

    assert problems(repeat_share=0.6) == ["The share of repeat reads must be from 0 to 0.5, got 0.6."]
    assert problems(repeat_share=0.01) == ["A share of 0.01 of 10 items repeats none: raise the share."]
    assert "lower the share or the gap, or use a washout" in problems(repeat_share=0.5, repeat_gap=6)[0]
    assert problems(repeat_share=0.5, repeat_gap=5) == []
    assert problems(repeat_share=0.5, repeat_gap=6, repeat_washout_days=14) == []


def _repeating(real: Dataset, synthetic: Dataset, readers: list[Any], **options: Any) -> Study:
    options = {"repeat_share": 0.3, "repeat_gap": 3} | options
    return study_for(real, synthetic, readers, allow_changes=True, options=ProtocolOptions(**options))


def _post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(
        url, body, content_type="application/json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
    )


def _read_all(client: Client, study: Study, label_for: Any) -> list[dict[str, Any]]:
    """Answer every item the API serves; returns the next payloads seen."""
    seen = []
    upcoming = client.get(reverse("turing:api_next", args=[study.pk])).json()
    while upcoming["item"] is not None:
        seen.append(upcoming)
        token = upcoming["item"]["token"]
        reply = _post(
            client, reverse("turing:api_answer", args=[study.pk]), {"token": token, **label_for(token)}
        )
        assert reply.status_code == 201, reply.json()
        upcoming = reply.json()["next"]
    seen.append(upcoming)
    return seen


def test_repeat_reads_are_stored_as_second_reads_and_kept_out_of_the_primary_analysis(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any, other_expert: Any, manager_client: Client
) -> None:
    study = _repeating(real_lym, synthetic_lym, [expert, other_expert])
    for reader in (expert, other_expert):
        assignment = study.assignments.get(reader=reader)
        assert (
            assignment.total == 13
            and assignment.first_reads == 10
            and assignment_order_audit(assignment=assignment)
        )
        count: dict[str, int] = {}

        def label_for(token: str, reader: Any = reader, count: dict[str, int] = count) -> dict[str, Any]:
            # The second read of an item flips the first reader's label on one of the three repeats.
            count[token] = count.get(token, 0) + 1
            flip = reader == expert and count[token] == 2 and sum(v == 2 for v in count.values()) == 1
            synthetic = (sum(map(ord, token)) % 2 == 0) != flip
            return {"label": "synthetic" if synthetic else "real", "confidence": 4}

        seen = _read_all(_csrf_client(reader), study, label_for)
        assert seen[-1]["finished"] is True and seen[-1]["total"] == 13
    reads = list(Answer.objects.filter(assignment__study=study).values_list("read", flat=True))
    assert sorted(reads) == [1] * 20 + [2] * 6
    records = study_records(study=study)
    assert len(records) == 20 and len({(r.reader, r.item) for r in records}) == 20
    assert study_statistics(study=study).mrmc.result is not None  # a complete, unduplicated case set
    pairs = repeat_read_pairs(study=study)
    assert len(pairs) == 6 and {p.reader for p in pairs} == {"R1", "R2"}
    first_reader = [p for p in pairs if p.reader == "R1"]
    assert sum(p.first != p.second for p in first_reader) == 1
    report = manager_client.get(reverse("evaluation:study_report", args=[study.pk])).content.decode()
    assert (
        "Within-reader agreement (repeat reads)" in report and "2 of 3" in report and "6 of 6" not in report
    )
    expected = cohen_kappa_score([p.first for p in pairs], [p.second for p in pairs])
    summary = manager_client.get(reverse("evaluation:study_export", args=[study.pk, "summary"]))
    rows = list(csv.DictReader(io.StringIO(b"".join(summary.streaming_content).decode())))
    pooled = next(r for r in rows if r["scope"] == "pooled" and r["measure"] == "within-reader Cohen kappa")
    assert float(pooled["estimate"]) == pytest.approx(expected)
    answers = manager_client.get(reverse("evaluation:study_export", args=[study.pk, "answers"]))
    exported = list(csv.DictReader(io.StringIO(b"".join(answers.streaming_content).decode())))
    assert sorted(r["read"] for r in exported) == ["1"] * 20 + ["2"] * 6


def test_back_changes_the_read_at_its_position(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    study = _repeating(real_lym, synthetic_lym, [expert])
    client = _csrf_client(expert)
    _read_all(client, study, lambda token: {"label": "real"})
    order = study.assignments.get().order
    token = next(t for t in order if order.count(t) == 2)
    first, second = (i for i, t in enumerate(order) if t == token)
    earlier = client.get(reverse("turing:api_answered", args=[study.pk, first])).json()
    assert earlier["item"]["token"] == token and earlier["label"] == "real"
    changed = _post(
        client,
        reverse("turing:api_answer", args=[study.pk]),
        {"token": token, "label": "synthetic", "position": first, "revise": True},
    )
    assert changed.status_code == 200
    labels = dict(Answer.objects.filter(item__token=token).values_list("position", "label"))
    assert labels == {first: "synthetic", second: "real"}


def test_a_washout_holds_the_second_session_until_it_opens(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    study = _repeating(real_lym, synthetic_lym, [expert], repeat_washout_days=14)
    client = _csrf_client(expert)
    seen = _read_all(client, study, lambda token: {"label": "real"})
    waiting = seen[-1]
    assert waiting["item"] is None and not waiting["finished"] and waiting["answered"] == 10
    assert waiting["opens_at"] is not None
    assert client.get(reverse("turing:study_read", args=[study.pk]))["Location"].endswith("/done/")
    done = client.get(reverse("turing:study_done", args=[study.pk])).content.decode()
    assert "Your second session opens on" in done and "remaining 3 patches" in done
    Answer.objects.filter(assignment__study=study).update(answered_at=waiting_time(days=15))
    later = _read_all(client, study, lambda token: {"label": "synthetic"})
    assert len(later) == 4 and later[-1]["finished"] is True
    assert (
        sorted(Answer.objects.filter(assignment__study=study).values_list("read", flat=True))
        == [1] * 10 + [2] * 3
    )


def waiting_time(days: int) -> Any:
    from django.utils import timezone

    return timezone.now() - timedelta(days=days)
