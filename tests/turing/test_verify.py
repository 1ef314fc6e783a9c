"""verify_study: each kind of edit made behind the application's back (an SQL UPDATE) is found and named;
an untouched study is intact."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from core.services import user_create
from turing.models import Assignment, Study, StudyItem, StudyItemImage
from turing.services import answer_next, answer_submit, protocol_hash, study_invite, study_verify

pytestmark = pytest.mark.django_db


def _frozen(study: Study, expert: Any) -> Study:
    assignment = study.assignments.get(reader=expert)
    answer_submit(
        study_id=study.pk, reader=expert, token=answer_next(assignment=assignment).token, label="real"
    )
    return Study.objects.get(pk=study.pk)


def _verify(study_id: int) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_study", str(study_id), stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, err.getvalue() + str(exc)
    return 0, out.getvalue()


def test_an_untouched_study_is_intact_and_a_later_reader_is_no_difference(
    study: Study, expert: Any, other_expert: Any
) -> None:
    frozen = _frozen(study, expert)
    study_invite(study=frozen, reader=other_expert)
    assert study_verify(study=frozen) == []
    code, text = _verify(frozen.pk)
    assert code == 0 and "intact" in text and frozen.protocol_hash[:12] in text


def _flip_truth(study: Study) -> str:
    item = study.items.order_by("id").first()
    StudyItem.objects.filter(pk=item.pk).update(truth="synthetic" if item.truth == "real" else "real")
    return f"item {item.token}'s truth"


def _move_assignment(study: Study) -> str:
    intruder = user_create(username="intruder", role="expert", validate=False)[0]
    assignment = study.assignments.order_by("id").first()
    Assignment.objects.filter(pk=assignment.pk).update(reader=intruder)
    return f"assignment {assignment.pk}'s reader changed"


def _reseed(study: Study) -> str:
    assignment = study.assignments.order_by("id").first()
    Assignment.objects.filter(pk=assignment.pk).update(seed=assignment.seed + 1)
    return f"assignment {assignment.pk}'s seed changed"


def _reorder(study: Study) -> str:
    assignment = study.assignments.order_by("id").first()
    Assignment.objects.filter(pk=assignment.pk).update(order=list(reversed(assignment.order)))
    return f"assignment {assignment.pk}'s order changed"


def _setting(study: Study) -> str:
    Study.objects.filter(pk=study.pk).update(too_fast_ms=60_000)
    return "setting too_fast_ms: 1000 at the freeze, 60000 now"


def _margin(study: Study) -> str:
    Study.objects.filter(pk=study.pk).update(equivalence_margin=0.3)
    return "setting equivalence_margin: 0.1 at the freeze, 0.3 now"


def _snapshot(study: Study) -> str:
    protocol = dict(study.protocol)
    protocol["seed"] = protocol["seed"] + 1
    Study.objects.filter(pk=study.pk).update(protocol=protocol, seed=protocol["seed"])
    return "the protocol kept at the freeze no longer matches its hash"


def _swap_image(study: Study) -> str:
    """Another item's served bytes put in place of one item's (a picture readers would then see instead,
    its patch and content hash untouched)."""
    first, second = study.items.order_by("id")[:2]
    StudyItemImage.objects.filter(item=first).update(png=StudyItemImage.objects.get(item=second).png)
    return f"item {first.token}'s image (the bytes readers are shown) changed"


@pytest.mark.parametrize(
    "edit", [_flip_truth, _move_assignment, _reseed, _reorder, _setting, _margin, _snapshot, _swap_image]
)
def test_each_kind_of_sql_edit_is_found_and_named(
    study: Study, expert: Any, edit: Callable[[Study], str]
) -> None:
    frozen = _frozen(study, expert)
    expected = edit(frozen)
    found = study_verify(study=Study.objects.get(pk=frozen.pk))
    assert any(expected in line for line in found), found
    code, text = _verify(frozen.pk)
    assert code == 1 and expected in text


def test_a_reader_enrolled_after_the_freeze_is_checked_against_their_enrolment(
    study: Study, expert: Any, other_expert: Any
) -> None:
    frozen = _frozen(study, expert)
    late = study_invite(study=frozen, reader=other_expert)
    Assignment.objects.filter(pk=late.pk).update(seed=late.seed + 1)
    assert study_verify(study=frozen) == [
        f"assignment {late.pk}'s reader or seed differs from its enrolment record"
    ]


def test_the_report_says_the_record_is_intact_or_what_changed(
    study: Study, expert: Any, manager_client: Any
) -> None:
    frozen = _frozen(study, expert)
    url = reverse("evaluation:study_report", args=[frozen.pk])
    assert "Record intact" in manager_client.get(url).content.decode()
    expected = _flip_truth(frozen)
    page = manager_client.get(url).content.decode()
    assert "The record changed" in page and expected.replace("'", "&#x27;") in page


def test_a_study_frozen_before_its_protocol_was_kept_is_checked_by_its_hash(
    study: Study, expert: Any
) -> None:
    """Its hash was computed without planned readers, assignments or item tokens: intact while the rows
    give that hash again, and flagged (without a name) once they do not."""
    frozen = _frozen(study, expert)
    old = copy.deepcopy(frozen.protocol)
    old["settings"].pop("planned_readers")
    old["settings"].pop("equal_transforms")  # settings added later still
    old["settings"].pop("stain_target")
    old.pop("assignments")
    old.pop("images")
    old["items"] = sorted([h, t, a] for _token, h, t, a in old["items"])
    Study.objects.filter(pk=frozen.pk).update(protocol={}, protocol_hash=protocol_hash(old))
    assert study_verify(study=Study.objects.get(pk=frozen.pk)) == []
    _flip_truth(frozen)
    (line,) = study_verify(study=Study.objects.get(pk=frozen.pk))
    assert "differs from its hash" in line


def test_a_study_with_practice_is_intact_and_a_practice_patch_served_as_other_bytes_is_found(
    real_lym: Any, synthetic_lym: Any, expert: Any
) -> None:
    from tests.turing.fixtures import study_for
    from turing.models import PracticeItem
    from turing.services import ProtocolOptions

    options = ProtocolOptions(practice_items=2, practice_datasets=[real_lym, synthetic_lym])
    frozen = _frozen(study_for(real_lym, synthetic_lym, [expert], options=options), expert)
    assert study_verify(study=frozen) == []  # a study with practice patches is intact as it stands
    first, second = frozen.practice.order_by("id")[:2]
    PracticeItem.objects.filter(pk=first.pk).update(png=second.png)
    assert study_verify(study=Study.objects.get(pk=frozen.pk)) == [
        f"practice patch {first.token}'s image (the bytes readers are shown) changed since the freeze"
    ]


def test_a_study_frozen_before_its_served_images_were_hashed_is_checked_without_them(
    study: Study, expert: Any
) -> None:
    """Its kept protocol has no "images" and its hash was made without them: intact, and every other
    check still runs."""
    frozen = _frozen(study, expert)
    old = {key: value for key, value in frozen.protocol.items() if key != "images"}
    Study.objects.filter(pk=frozen.pk).update(protocol=old, protocol_hash=protocol_hash(old))
    assert study_verify(study=Study.objects.get(pk=frozen.pk)) == []
    expected = _flip_truth(frozen)
    assert any(expected in line for line in study_verify(study=Study.objects.get(pk=frozen.pk)))


def test_answers_without_a_freeze_are_found(study: Study, expert: Any) -> None:
    frozen = _frozen(study, expert)
    Study.objects.filter(pk=frozen.pk).update(frozen_at=None, protocol_hash="", protocol={})
    assert study_verify(study=Study.objects.get(pk=frozen.pk)) == [
        "the study has answers but is not frozen: its freeze was removed"
    ]
    code, text = _verify(frozen.pk)
    assert code == 1 and "is not frozen: its freeze was removed" in text
