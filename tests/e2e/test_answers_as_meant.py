"""Answers as meant, in a real headless Chromium: a page out of date never changes an earlier answer,
the arrow keys never change a confidence chosen with the mouse, and the page says what was saved."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import shot
from tests.e2e.test_browser import _drawn, _login, _start
from tests.turing.fixtures import study_for
from turing.models import Answer, StudyEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _changeable(expert: Any, real_lym: Any, synthetic_lym: Any) -> Any:
    return study_for(
        real_lym, synthetic_lym, [expert], name="changes allowed", items_per_reader=6, allow_changes=True
    )


def _first_answered(page: Any, live_server: Any, study: Any) -> Any:
    """Signed in on patch 1 of `study`, answered real · 2 by keyboard; the progress line."""
    from playwright.sync_api import expect

    _login(page, live_server.url, "expert-a")
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    _start(page)
    _drawn(page)
    progress = page.locator(".reader-progress-text")
    page.keyboard.press("r")
    page.keyboard.press("2")
    expect(progress).to_have_text("Patch 2 of 6 · 1 answered")
    return progress


def test_a_page_out_of_date_never_changes_an_earlier_answer(
    page: Any, live_server: Any, expert: Any, real_lym: Any, synthetic_lym: Any
) -> None:
    """The audit's stale page, made certain: two tabs on patch 1; the first answers real · 2, then the
    second (still showing patch 1) answers synthetic · 1. It is refused with what is stored, the page
    moves on to the current patch, and patch 1 keeps real · 2."""
    from playwright.sync_api import expect

    study = _changeable(expert, real_lym, synthetic_lym)
    _login(page, live_server.url, "expert-a")
    url = f"{live_server.url}/studies/{study.pk}/?start=1"
    page.goto(url)
    _drawn(page)
    stale = page.context.new_page()
    stale.goto(url)
    _drawn(stale)
    page.keyboard.press("r")
    page.keyboard.press("2")
    expect(page.locator(".status")).to_have_text("Saved: real · 2 for patch 1.")
    stale.keyboard.press("s")
    stale.keyboard.press("1")
    expect(stale.locator(".error")).to_contain_text("Patch 1 is already answered (real · 2)")
    expect(stale.locator(".reader-progress-text")).to_have_text("Patch 2 of 6 · 1 answered")
    shot(stale, "expert-stale-page-refused")
    first = Answer.objects.get(assignment__study=study, position=0)
    assert (first.label, first.confidence, first.changed_at) == ("real", 2, None)
    assert not StudyEvent.objects.filter(study=study, kind=StudyEvent.Kind.ANSWER_CHANGED).exists()
    stale.close()


def test_back_and_forward_then_an_answer_go_to_the_current_patch(
    page: Any, live_server: Any, expert: Any, real_lym: Any, synthetic_lym: Any
) -> None:
    from playwright.sync_api import expect

    study = _changeable(expert, real_lym, synthetic_lym)
    progress = _first_answered(page, live_server, study)
    page.go_back()
    page.go_forward()  # never from a cache: the reading page and its API are no-store
    expect(progress).to_have_text("Patch 2 of 6 · 1 answered")
    _drawn(page)
    page.keyboard.press("s")
    page.keyboard.press("1")
    expect(progress).to_have_text("Patch 3 of 6 · 2 answered")
    answers = list(Answer.objects.filter(assignment__study=study, label__isnull=False).order_by("position"))
    assert [(a.position, a.label, a.confidence) for a in answers] == [(0, "real", 2), (1, "synthetic", 1)]


def test_back_says_what_a_change_replaced(
    page: Any, live_server: Any, expert: Any, real_lym: Any, synthetic_lym: Any
) -> None:
    from playwright.sync_api import expect

    study = _changeable(expert, real_lym, synthetic_lym)
    progress = _first_answered(page, live_server, study)
    page.wait_for_timeout(450)  # past the short lock after an answer
    page.keyboard.press("b")
    expect(progress).to_have_text("Patch 1 of 6 · back at an earlier answer")
    _drawn(page)
    page.keyboard.press("s")
    page.keyboard.press("1")
    page.keyboard.press("Enter")  # a change is made in the controls, then saved
    expect(page.locator(".status")).to_have_text("Changed from real · 2 to synthetic · 1 for patch 1.")
    shot(page, "expert-changed-from")
    change = StudyEvent.objects.get(study=study, kind=StudyEvent.Kind.ANSWER_CHANGED)
    assert change.before["position"] == 0 and change.before["label"] == "real"


def test_arrow_keys_never_change_a_confidence_chosen_with_the_mouse(
    page: Any, live_server: Any, study: Any
) -> None:
    """Click confidence 3, press the right arrow (documented as pan), then R: real · 3 is saved."""
    from playwright.sync_api import expect

    _login(page, live_server.url, "expert-a")
    page.goto(f"{live_server.url}/studies/{study.pk}/?start=1")
    _drawn(page)
    page.locator("input[name=confidence][value='3']").click()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    expect(page.locator("input[name=confidence][value='3']")).to_be_checked()
    page.keyboard.press("r")
    expect(page.locator(".status")).to_have_text("Saved: real · 3 for patch 1.")
    saved = Answer.objects.get(assignment__study=study, position=0)
    assert (saved.label, saved.confidence) == ("real", 3)


@pytest.mark.parametrize(
    "size", [(1280, 800), (1366, 657), (390, 844)], ids=["1280x800", "1366x657", "390x844"]
)
def test_the_reading_page_at_three_sizes_pause_notices_and_back(
    browser: Any, live_server: Any, expert: Any, real_lym: Any, synthetic_lym: Any, size: tuple[int, int]
) -> None:
    """Pause disables the answer controls (and a key answers nothing); the "Resumed at…" notice goes once
    an answer is saved; Pause and Back are on the first screen, also on a phone; Back shows the earlier
    answer in the controls, with a way back to the current patch that changes nothing."""
    from playwright.sync_api import expect

    study = _changeable(expert, real_lym, synthetic_lym)
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    try:
        progress = _first_answered(page, live_server, study)
        page.reload()  # a reader coming back: the page says where they resume
        _drawn(page)
        resumed = page.locator(".notice.resumed")
        expect(resumed).to_be_visible()
        for control in ("button.pause", "button.back"):
            box = page.locator(control).bounding_box()
            assert box is not None and box["y"] + box["height"] <= size[1], (control, box, size)
        page.keyboard.press("p")
        expect(page.locator("button.answer[data-label=real]")).to_be_disabled()
        expect(page.locator("input[name=confidence]").first).to_be_disabled()
        shot(page, f"expert-paused-{size[0]}x{size[1]}")
        page.keyboard.press("r")
        page.keyboard.press("3")
        page.keyboard.press("p")
        expect(page.locator("button.answer[data-label=real]")).to_be_enabled()
        assert Answer.objects.filter(assignment__study=study, label__isnull=False).count() == 1
        page.keyboard.press("s")
        page.keyboard.press("4")
        expect(progress).to_have_text("Patch 3 of 6 · 2 answered")
        expect(resumed).to_be_hidden()
        page.wait_for_timeout(450)
        page.keyboard.press("b")
        expect(page.locator("input[name=confidence]:checked")).to_have_value("4")
        expect(page.locator("button.return")).to_be_visible()
        shot(page, f"expert-back-{size[0]}x{size[1]}")
        page.locator("button.return").click()
        expect(progress).to_have_text("Patch 3 of 6 · 2 answered")
        assert not StudyEvent.objects.filter(study=study, kind=StudyEvent.Kind.ANSWER_CHANGED).exists()
    finally:
        context.close()


@pytest.mark.parametrize("touch", [False, True], ids=["keyboard", "touch"])
def test_the_first_page_speaks_of_taps_on_a_touch_screen_and_of_keys_on_a_keyboard(
    browser: Any, live_server: Any, expert: Any, real_lym: Any, synthetic_lym: Any, touch: bool
) -> None:
    """A phone reader is told to tap the buttons, not to press keys they do not have; a desk reader
    gets the keys. A phone reader then answers by taps alone: a confidence, then the label."""
    from playwright.sync_api import expect

    study = _changeable(expert, real_lym, synthetic_lym)
    size = {"width": 390, "height": 844} if touch else {"width": 1280, "height": 800}
    context = browser.new_context(viewport=size, has_touch=touch, is_mobile=touch)
    page = context.new_page()
    try:
        _login(page, live_server.url, "expert-a")
        page.goto(f"{live_server.url}/studies/{study.pk}/")
        taps, keys = page.locator("li.on-touch"), page.locator("li.on-keys").first
        if touch:
            expect(taps).to_be_visible()
            expect(taps).to_contain_text("Tap Real or Synthetic")
            expect(keys).to_be_hidden()
        else:
            expect(keys).to_be_visible()
            expect(taps).to_be_hidden()
        shot(page, f"expert-intro-{'touch' if touch else 'keyboard'}")
        if touch:
            _start(page)
            _drawn(page)
            page.locator("input[name=confidence][value='4']").tap()
            page.locator("button.answer[data-label=synthetic]").tap()
            progress = page.locator(".reader-progress-text")
            expect(progress).to_have_text("Patch 2 of 6 · 1 answered")
            saved = Answer.objects.get(assignment__study=study, position=0)
            assert (saved.label, saved.confidence) == ("synthetic", 4)
            # A label first waits for a confidence; the same label tapped again saves it without one.
            _drawn(page)
            page.wait_for_timeout(450)  # the answer lock, from when the patch shows
            page.locator("button.answer[data-label=real]").tap()
            expect(page.locator(".status")).to_contain_text("Real again, saves it without")
            assert not Answer.objects.filter(
                assignment__study=study, position=1, label__isnull=False
            ).exists()
            page.locator("button.answer[data-label=real]").tap()
            expect(progress).to_have_text("Patch 3 of 6 · 2 answered")
            second = Answer.objects.get(assignment__study=study, position=1)
            assert (second.label, second.confidence) == ("real", None)
        else:
            # Keys never save a half-made answer: R pressed twice still waits for a confidence.
            _start(page)
            _drawn(page)
            page.keyboard.press("r")
            page.keyboard.press("r")
            expect(page.locator(".status")).to_contain_text("now a confidence")
            assert not Answer.objects.filter(assignment__study=study, label__isnull=False).exists()
    finally:
        context.close()
