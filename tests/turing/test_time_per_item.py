"""Time per item: the rule on constructed events, and the time stored, exported and reported."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from analysis import timing
from tests.turing.test_api import _csrf_client, _post
from turing.models import Answer, Study


def test_an_undisturbed_look_counts_in_full() -> None:
    assert timing.visible_ms([], answered_ms=4200) == 4200
    assert timing.visible_ms([(1000, "input"), (3000, "input")], answered_ms=5000) == 5000


def test_hidden_and_unfocused_time_is_counted_out() -> None:
    events = [(1000, "hidden"), (6000, "visible"), (7000, "blur"), (9000, "focus")]
    # 0-1 s seen, 1-6 s hidden, 6-7 s seen, 7-9 s another window, 9-10 s seen
    assert timing.visible_ms(events, answered_ms=10_000) == 3000


def test_idle_time_after_a_minute_without_input_is_counted_out() -> None:
    # Drawn at 0, last input at 10 s, nothing until 200 s, an input at 200 s, answered at 205 s:
    # 0-70 s counts (a minute after the last sign), 70-200 s does not, 200-205 s does.
    events = [(10_000, "input"), (200_000, "input")]
    assert timing.visible_ms(events, answered_ms=205_000) == 75_000
    # Coming back to the tab is a sign of the reader too.
    assert timing.visible_ms([(0, "hidden"), (300_000, "visible")], answered_ms=302_000) == 2000


@pytest.mark.parametrize(
    "raw, message",
    [
        ("soon", "a list of"),
        ([[5, "hidden"], [3, "visible"]], "in the order they happened"),
        ([[1, "scroll"]], "unknown event kind 'scroll'"),
        ([[-1, "input"]], "milliseconds from 0"),
        ([[1]], "an event is [milliseconds, kind]"),
    ],
)
def test_events_that_describe_no_reading_are_refused_by_name(raw: Any, message: str) -> None:
    with pytest.raises(timing.EventsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        timing.events_clean(raw)


@pytest.mark.django_db
def test_the_time_is_stored_flagged_and_reported(study: Study, expert: Any, manager_client: Client) -> None:
    client = _csrf_client(expert)
    first = client.get(reverse("turing:api_next", args=[study.pk])).json()["item"]["token"]
    body = {"token": first, "label": "real", "confidence": 3}
    bad = _post(client, study, body | {"events": [[5, "scroll"]], "elapsed_ms": 400})
    assert bad.status_code == 400 and "unknown event kind 'scroll'" in bad.json()["detail"]
    assert _post(client, study, body | {"events": []}).status_code == 400  # elapsed_ms missing
    response = _post(client, study, body | {"events": [[100, "input"]], "elapsed_ms": 400})
    assert response.status_code == 201
    second = response.json()["next"]["item"]["token"]
    events = [[500, "hidden"], [20_500, "visible"]]
    assert (
        _post(
            client, study, {"token": second, "label": "synthetic", "events": events, "elapsed_ms": 22_000}
        ).status_code
        == 201
    )
    third = _post(client, study, {"token": second, "label": "synthetic"}).json()["next"]["item"]["token"]
    assert (
        _post(client, study, {"token": third, "label": "real"}).status_code == 201
    )  # an API client: no time
    stored = dict(Answer.objects.filter(label__isnull=False).values_list("item__token", "visible_ms"))
    assert stored == {first: 400, second: 2000, third: None}
    text = b"".join(
        manager_client.get(reverse("evaluation:study_export", args=[study.pk, "answers"])).streaming_content
    ).decode()
    rows = {r["item_token"]: r for r in csv.DictReader(io.StringIO(text))}
    assert (rows[first]["visible_seconds"], rows[first]["too_fast"]) == ("0.400", "1")  # under 1,000 ms
    assert (rows[second]["visible_seconds"], rows[second]["too_fast"]) == ("2.000", "0")
    assert (rows[third]["visible_seconds"], rows[third]["too_fast"]) == ("", "")
    report = manager_client.get(reverse("evaluation:study_report", args=[study.pk])).content.decode()
    assert "Time per item" in report and "1 answer came without a measured time" in report
