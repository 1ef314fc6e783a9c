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

from evaluation.selectors import repeat_read_pairs, study_figures, study_records
from gan.models import Dataset
from tests.turing.fixtures import plan_problems, study_for
from tests.turing.test_api import _csrf_client
from turing.models import Answer, RepeatRead, Study, StudyEvent
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
        item_of = {r.token: r.item.token for r in RepeatRead.objects.filter(assignment=assignment)}

        def label_for(
            served: str, reader: Any = reader, count: dict[str, int] = count, item_of: Any = item_of
        ) -> dict[str, Any]:
            # The second read of an item flips the first reader's label on one of the three repeats.
            token = item_of.get(served, served)  # a repeat is served by its own token
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
    assert study_figures(study=study).mrmc.result is not None  # a complete, unduplicated case set
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


def test_a_repeat_read_has_its_own_token_and_closes_the_first_read(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any, manager: Any
) -> None:
    """A repeat is served by a token (and image URL) of its own; once it has been shown, the first read's
    image is gone and its answer final, while Back still changes the repeat; audit rows name the read."""
    study = _repeating(real_lym, synthetic_lym, [expert])
    client = _csrf_client(expert)
    seen = _read_all(client, study, lambda token: {"label": "real"})
    served = [s["item"]["token"] for s in seen if s["item"]]
    assignment = study.assignments.get()
    order = assignment.order
    assert len(set(served)) == len(served) == 13  # 10 first reads and 3 repeats, each its own token
    repeats = {r.position: r for r in RepeatRead.objects.filter(assignment=assignment)}
    assert sorted(repeats) == [i for i, t in enumerate(order) if t in order[:i]]
    assert all(served[p] == r.token and order[p] == r.item.token for p, r in repeats.items())
    position = min(repeats)
    item_token, repeat_token = order[position], repeats[position].token
    first = order.index(item_token)
    # The first read's image and its answer are closed now that the repeat has been shown ...
    assert client.get(reverse("turing:item_image", args=[item_token])).status_code == 404
    assert client.get(reverse("turing:item_image", args=[repeat_token])).status_code == 200
    assert client.get(reverse("turing:api_answered", args=[study.pk, first])).status_code == 404
    refused = _post(
        client,
        reverse("turing:api_answer", args=[study.pk]),
        {"token": item_token, "label": "synthetic", "position": first, "revise": True},
    )
    assert refused.status_code == 409 and "shown again as a repeat" in refused.json()["detail"]
    # ... and another reader's repeat token is nobody's else.
    stranger = _csrf_client(manager)
    assert stranger.get(reverse("turing:item_image", args=[repeat_token])).status_code == 404
    # Back to the repeat changes the repeat, named by its own token and position.
    earlier = client.get(reverse("turing:api_answered", args=[study.pk, position])).json()
    assert earlier["item"]["token"] == repeat_token and earlier["label"] == "real"
    changed = _post(
        client,
        reverse("turing:api_answer", args=[study.pk]),
        {"token": repeat_token, "label": "synthetic", "position": position, "revise": True},
    )
    assert changed.status_code == 200, changed.json()
    labels = dict(Answer.objects.filter(item__token=item_token).values_list("read", "label"))
    assert labels == {1: "real", 2: "synthetic"}
    event = study.events.get(kind=StudyEvent.Kind.ANSWER_CHANGED)
    assert event.before["read"] == 2 and event.before["position"] == position


def test_an_items_token_never_answers_its_repeat(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    """A page left on the first read, posting its token while the repeat is on screen, labels nothing."""
    study = _repeating(real_lym, synthetic_lym, [expert])
    client = _csrf_client(expert)
    upcoming = client.get(reverse("turing:api_next", args=[study.pk])).json()
    order = study.assignments.get().order
    while order[upcoming["position"]] not in order[: upcoming["position"]]:
        token = upcoming["item"]["token"]
        upcoming = _post(
            client, reverse("turing:api_answer", args=[study.pk]), {"token": token, "label": "real"}
        ).json()["next"]
    item_token = order[upcoming["position"]]
    assert upcoming["item"]["token"] != item_token
    stale = _post(
        client, reverse("turing:api_answer", args=[study.pk]), {"token": item_token, "label": "synthetic"}
    )
    assert stale.status_code == 409 and "shown again as a repeat" in stale.json()["detail"]
    repeat = Answer.objects.get(item__token=item_token, read=2)
    assert repeat.label is None


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


def test_a_repeat_read_moved_to_another_item_by_sql_is_found(
    real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    from turing.models import StudyItem
    from turing.services import study_verify

    study = _repeating(real_lym, synthetic_lym, [expert])
    repeat = RepeatRead.objects.filter(assignment__study=study).order_by("position").first()
    assert study_verify(study=study) == []
    other = StudyItem.objects.filter(study=study).exclude(pk=repeat.item_id).first()
    RepeatRead.objects.filter(pk=repeat.pk).update(item=other)
    where = f"patch {repeat.position + 1} of assignment {repeat.assignment_id}"
    assert study_verify(study=study) == [f"the repeat read at {where} shows another item"]
