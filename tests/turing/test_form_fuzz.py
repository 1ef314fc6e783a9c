"""Every HTML form the site serves, posted with hostile values in every field: never a server error.

The form pages are found, not listed: each page is fetched as the user who sees it, the names of its
forms' fields are read from the HTML, and each form is posted back with one hostile value in every field
at once (ids past 2^63, negatives, non-ASCII digits, control characters, very long text, nested JSON).
A new form is covered without touching this file."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from gan.models import Dataset
from turing.models import Study

pytestmark = pytest.mark.django_db

HOSTILE = [
    str(2**63),
    "-1",
    "²",
    "1e400",
    "nan",
    "x\r\nBcc: a@example.org",
    "\x00",
    "[" * 2000 + "]" * 2000,
    "ä" * 20_000,
    "",
]
FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
FIELD = re.compile(r"<(?:input|select|textarea|button)\b[^>]*\bname=\"([^\"]+)\"", re.I)
ACTION = re.compile(r"\baction=\"([^\"]*)\"", re.I)
METHOD = re.compile(r"\bmethod=\"post\"", re.I)


def _forms(html: str, page: str) -> list[tuple[str, list[str]]]:
    """(where it posts, its field names) for each POST form of a page."""
    found = []
    for attributes, body in FORM.findall(html):
        if not METHOD.search(attributes):
            continue
        action = ACTION.search(attributes)
        target = unescape(action.group(1)) if action and action.group(1) else page
        names = sorted({n for n in FIELD.findall(body) if n != "csrfmiddlewaretoken"})
        found.append((target, names))
    return found


def _pages(study: Study) -> list[str]:
    """The managers' form pages: the builder, a study's page (invitations, status, removals), the imports
    and every job's form, and the lists that carry forms of their own."""
    return [
        reverse("turing:study_new"),
        reverse("turing:study_detail", args=[study.pk]),
        reverse("gan:dataset_import"),
        reverse("gan:run_new"),
        reverse("gan:sampling_new"),
        reverse("evaluation:report_list"),  # the FID report form
        reverse("evaluation:copying_list"),
        reverse("evaluation:augmentation_list"),
    ]


def _post_everything(client: Client, pages: list[str]) -> tuple[int, list[str]]:
    posted, failures = 0, []
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        forms = _forms(response.content.decode(), page)
        for target, names in forms:
            if target == reverse("logout"):
                continue  # the header's sign-out form: posting it ends the session under test
            for value in HOSTILE:
                data = {name: value for name in names}
                answer = client.post(target, data)
                posted += 1
                if answer.status_code >= 500:
                    failures.append(f"{target} {names} = {value[:30]!r}: {answer.status_code}")
    return posted, failures


def test_no_managers_form_gives_a_server_error_on_hostile_input(
    manager_client: Client, study: Study, real_lym: Dataset, synthetic_lym: Dataset
) -> None:
    posted, failures = _post_everything(manager_client, _pages(study))
    assert posted > 60, posted
    assert not failures, "\n".join(failures)


def test_no_readers_form_gives_a_server_error_on_hostile_input(expert_client: Client, study: Any) -> None:
    study.ask_profile = True
    study.save(update_fields=["ask_profile"])
    pages = [
        reverse("turing:study_profile", args=[study.pk]),
        reverse("turing:password_set"),
    ]
    posted, failures = _post_everything(expert_client, pages)
    assert posted >= 2 * len(HOSTILE), posted
    assert not failures, "\n".join(failures)
