"""The expert and study-manager pages in a real headless Chromium."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS, PATIENCE_MS, shot
from tests.turing.fixtures import create_study
from turing.models import Answer, Study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _drawn(page: Any) -> None:
    """Wait until the patch on screen is drawn: the page takes answers from then on."""
    from playwright.sync_api import expect

    expect(page.locator("img.patch")).to_have_attribute("data-drawn", "1")


def _answerable(page: Any) -> None:
    """Wait until the page takes the next answer: its patch drawn, and past the short lock (400 ms) that
    starts when the previous answer is saved, before that patch is drawn. A key pressed earlier does
    nothing, as for a reader; on a busy machine the patch can take long to draw."""
    _drawn(page)
    page.wait_for_timeout(450)


def _start(page: Any) -> None:
    """Past the instructions page a first sitting opens with, to patch 1."""
    page.get_by_role("link", name="Start with patch 1").click()


def _login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill("a-long-test-pass-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def test_expert_labels_by_keyboard_reloads_resumes_and_finishes(
    page: Any, live_server: Any, study: Study
) -> None:
    from playwright.sync_api import expect

    _login(page, live_server.url, "expert-a")
    page.get_by_role("link", name="Start").click()
    expect(page.locator("section.intro")).to_contain_text("10 patches")  # the instructions come first
    shot(page, "expert-instructions-first")
    _start(page)
    progress = page.locator(".reader-progress-text")
    expect(progress).to_have_text("Patch 1 of 10 · 0 answered")
    image = page.locator("img.patch")
    expect(image).to_have_attribute("alt", "Patch 1 of 10")
    shot(page, "expert-first-patch")
    keys = ["r", "s", "r", "r", "s", "s", "r", "s", "s", "r"]
    for index, key in enumerate(keys):
        if index == 5:
            page.reload()
            expect(progress).to_have_text("Patch 6 of 10 · 5 answered")
            expect(page.locator(".resumed")).to_have_text(
                "Resumed at patch 6 of 10: your 5 earlier answers are saved."
            )
            shot(page, "expert-resumed-after-reload")
        _answerable(page)
        page.keyboard.press(str(index % 5 + 1))
        page.keyboard.press(key)
        if index < len(keys) - 1:
            expect(progress).to_have_text(f"Patch {index + 2} of 10 · {index + 1} answered")
    page.wait_for_url(f"**/studies/{study.pk}/done/")
    assert "You have answered 10 of 10 patches" in page.content()
    shot(page, "expert-finished")
    answers = list(Answer.objects.filter(assignment__study=study).order_by("position"))
    assert [a.label for a in answers] == ["real" if k == "r" else "synthetic" for k in keys]
    assert [a.confidence for a in answers] == [i % 5 + 1 for i in range(10)]
    assert all(a.answered_at >= a.shown_at for a in answers)
    # The page measured how long each patch was looked at and sent it with the answer.
    assert all(a.visible_ms is not None and 0 < a.visible_ms < 60_000 for a in answers)


def test_image_is_shown_at_a_fixed_size_without_smoothing(page: Any, live_server: Any, study: Study) -> None:
    _login(page, live_server.url, "expert-a")
    page.goto(f"{live_server.url}/studies/{study.pk}/?start=1")
    image = page.locator("img.patch")
    _drawn(page)
    assert image.evaluate("img => [img.naturalWidth, img.width, getComputedStyle(img).imageRendering]") == [
        128,
        512,
        "pixelated",
    ]
    page.keyboard.press("+")
    assert image.evaluate("img => img.width") == 768
    page.keyboard.press("Tab")  # the skip link first: keyboard users can reach everything
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_study_manager_builds_a_study_and_sees_progress(
    page: Any, live_server: Any, manager: Any, expert: Any, real_lym: Any, synthetic_lym: Any
) -> None:
    from playwright.sync_api import expect

    _login(page, live_server.url, "manager-a")
    page.goto(f"{live_server.url}/manage/studies/new/")
    page.get_by_label("Study name").fill("Browser-built study")
    page.locator("#id_real_datasets").get_by_role("checkbox", name=re.compile("^real LYM")).check()
    expect(page.locator(".pool-thumbnails img").first).to_be_visible()
    first_arm = page.locator("#id_synthetic_datasets")  # the first synthetic arm's pools
    first_arm.get_by_role("checkbox", name=re.compile("^synthetic LYM")).check()
    # The preview follows the form without a click, and the default count is fitted to the pools.
    expect(page.locator(".preview")).to_contain_text("Items per reader set to 24")
    expect(page.get_by_label("Items per reader")).to_have_value("24")
    page.get_by_label("Items per reader").fill("6")
    page.get_by_label("Items per reader").dispatch_event("change")
    expect(page.locator(".preview")).to_contain_text(
        "3 real (of 12 in the pool) and 3 synthetic (of 12 in the pool)"
    )
    page.get_by_role("checkbox", name="expert-a").check()
    shot(page, "manager-builder-preview")
    # The test's synthetic patches are flat fields: the shortcut check says so, opens the folded
    # section of its remedies, and asks for a yes; the other advanced sections stay folded.
    expect(page.locator("#section-shortcuts")).to_have_attribute("open", "")
    for folded in ("arms", "reading", "practice", "verdict"):
        expect(page.locator(f"#section-{folded}")).not_to_have_attribute("open", "")
    page.get_by_label("Build it despite a near-certain shortcut").check()
    page.get_by_role("button", name="Create the study").click()
    page.wait_for_url("**/manage/studies/*/")
    expect(page.locator(".progress-table")).to_contain_text("expert-a")
    expect(page.locator(".progress-table")).to_contain_text("0 of 6")
    study = Study.objects.get(name="Browser-built study")
    assert study.items.count() == 6
    shot(page, "manager-study-detail")


def test_the_builders_thumbnails_follow_the_chosen_class(
    page: Any, live_server: Any, manager: Any, real_lym: Any, synthetic_lym: Any
) -> None:
    from playwright.sync_api import expect

    _login(page, live_server.url, "manager-a")
    page.goto(f"{live_server.url}/manage/studies/new/")
    pool = page.locator("#id_real_datasets label.pool-option", has_text="real LYM")
    expect(pool.locator(".pool-thumbnails img")).to_have_count(4)
    page.get_by_label("Tissue class").select_option("TUM")  # the pool holds no TUM patch
    expect(pool.locator(".pool-thumbnails img")).to_have_count(0)
    page.get_by_label("Tissue class").select_option("LYM")
    expect(pool.locator(".pool-thumbnails img")).to_have_count(4)
    shot(page, "manager-builder-sections")


def test_study_manager_reads_the_verdict_first_with_its_charts(
    page: Any, live_server: Any, manager: Any, expert: Any, other_expert: Any, study: Study
) -> None:
    from playwright.sync_api import expect

    from turing.services import answer_next, answer_submit, study_invite

    for reader, confidence in ((expert, 5), (other_expert, 3)):  # both always right
        assignment = study_invite(study=study, reader=reader)
        while not (upcoming := answer_next(assignment=assignment)).finished:
            truth = study.items.get(token=upcoming.token).truth
            answer_submit(
                study_id=study.pk, reader=reader, token=upcoming.token, label=truth, confidence=confidence
            )
    _login(page, live_server.url, "manager-a")
    page.goto(f"{live_server.url}/manage/evaluation/studies/{study.pk}/")
    verdict = page.locator("section.verdict")
    expect(verdict).to_contain_text("Verdict: detectable")
    expect(verdict).to_contain_text("The rule.")
    assert verdict.bounding_box()["y"] < page.locator("h2", has_text="Primary endpoint").bounding_box()["y"]
    for alt in ("Forest plot", "ROC curves", "Bar chart: how many answers"):
        image = page.locator(f'img[alt^="{alt}"]')
        expect(image).to_be_visible()
        assert image.evaluate("img => img.naturalWidth") > 0, alt  # drawn, not blocked by the CSP
    shot(page, "manager-study-report")


def test_a_job_page_follows_the_job_live(page: Any, live_server: Any, manager: Any) -> None:
    from playwright.sync_api import expect

    from core.models import Job

    job = Job.objects.create(kind="ping", task_name="core.ping", title="A ping")
    _login(page, live_server.url, "manager-a")
    page.goto(f"{live_server.url}/manage/jobs/{job.pk}/")
    expect(page.locator(".job-state")).to_have_text("Queued")
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING, progress=0.5, message="half way")
    expect(page.locator(".job-message")).to_have_text("half way")
    Job.objects.filter(pk=job.pk).update(state=Job.State.FINISHED, progress=1.0, message="done")
    expect(page.locator(".job-state")).to_have_text("Finished")
    expect(page.locator(".job-progress")).to_have_attribute("value", "1")


def test_closing_asks_first_and_the_readers_page_turns_read_only(
    browser: Any, page: Any, live_server: Any, manager: Any, study: Study
) -> None:
    """The expert is looking at a patch when the manager closes the study (after confirming)."""
    from playwright.sync_api import expect

    _reading(page, live_server, study)  # signed in, the first patch drawn
    page.keyboard.press("r")
    page.keyboard.press("Enter")  # one answer (a label without a confidence): the expert is part-way through
    expect(page.locator(".reader-progress-text")).to_contain_text("1 answered")
    manager_context = browser.new_context()
    try:
        manager_page = manager_context.new_page()
        _login(manager_page, live_server.url, "manager-a")
        manager_page.goto(f"{live_server.url}/manage/studies/{study.pk}/")
        manager_page.get_by_role("button", name="Close the study").click()
        expect(manager_page.locator("h1")).to_contain_text("Close")
        expect(manager_page.locator("main")).to_contain_text("expert-a: 1 of 10 answered")
        study.refresh_from_db()
        assert study.is_open  # nothing happens before the manager confirms
        manager_page.get_by_role("button", name="Close the study").click()
        expect(manager_page.locator("main")).to_contain_text("The study is closed")
    finally:
        manager_context.close()
    expect(page.locator(".reader-error")).to_contain_text("closed by its manager")
    for button in page.locator("button.answer").all():
        expect(button).to_be_disabled()
    page.keyboard.press("s")  # a key does nothing either
    assert Answer.objects.filter(assignment__study=study, label__isnull=False).count() == 1
    shot(page, "expert-study-closed")


def test_the_study_page_shows_a_readers_progress_without_a_reload(
    page: Any, live_server: Any, manager: Any, expert: Any, study: Study
) -> None:
    from playwright.sync_api import expect

    from turing.services import answer_next, answer_submit

    _login(page, live_server.url, "manager-a")
    page.goto(f"{live_server.url}/manage/studies/{study.pk}/")
    row = page.locator('tr[data-pseudonym="R1"]')
    expect(row).to_contain_text("R1 (expert-a)")
    expect(row.locator(".answered")).to_have_text("0 of 10")
    assignment = study.assignments.get()
    for label in ("real", "synthetic", "real"):
        token = answer_next(assignment=assignment).token
        answer_submit(study_id=study.pk, reader=expert, token=token, label=label, confidence=3)
    expect(row.locator(".answered")).to_have_text("3 of 10")  # polled, no reload
    expect(row.locator(".last-answer")).not_to_have_text("—")


def _reading(page: Any, live_server: Any, study: Study) -> Any:
    from playwright.sync_api import expect

    _login(page, live_server.url, "expert-a")
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    _start(page)
    progress = page.locator(".reader-progress-text")
    expect(progress).to_have_text("Patch 1 of 10 · 0 answered")
    _drawn(page)
    return progress


def test_label_then_confidence_stores_the_confidence_on_the_patch_it_was_given_for(
    page: Any, live_server: Any, study: Study
) -> None:
    from playwright.sync_api import expect

    progress = _reading(page, live_server, study)
    page.keyboard.press("r")
    expect(page.locator(".status")).to_contain_text("Real chosen: now a confidence")
    assert not Answer.objects.filter(label__isnull=False).exists()  # not saved without its confidence
    page.keyboard.press("4")
    expect(progress).to_have_text("Patch 2 of 10 · 1 answered")
    expect(page.locator("input[name=confidence]:checked")).to_have_count(0)  # nothing carried over
    _answerable(page)
    page.keyboard.press("2")
    page.keyboard.press("s")  # the other order
    expect(progress).to_have_text("Patch 3 of 10 · 2 answered")
    _answerable(page)
    page.keyboard.press("r")
    page.keyboard.press("Enter")  # a label alone, deliberately
    expect(progress).to_have_text("Patch 4 of 10 · 3 answered")
    answers = list(Answer.objects.filter(label__isnull=False).order_by("position"))
    assert [(a.position, a.label, a.confidence) for a in answers] == [
        (0, "real", 4),
        (1, "synthetic", 2),
        (2, "real", None),
    ]


def test_a_double_or_held_key_answers_once(page: Any, live_server: Any, study: Study) -> None:
    from playwright.sync_api import expect

    Study.objects.filter(pk=study.pk).update(ask_confidence=False)
    progress = _reading(page, live_server, study)
    page.locator("body").dispatch_event("keydown", {"key": "s", "repeat": True})  # a held key's repeat
    page.wait_for_timeout(300)
    assert not Answer.objects.filter(label__isnull=False).exists()
    page.keyboard.press("s")
    page.keyboard.press("s")  # a second press right after the first
    expect(progress).to_have_text("Patch 2 of 10 · 1 answered")
    page.wait_for_timeout(800)
    assert Answer.objects.filter(label__isnull=False).count() == 1
    expect(progress).to_have_text("Patch 2 of 10 · 1 answered")


def test_a_reader_finishes_a_two_arm_study_by_keyboard_and_the_report_shows_both_arms(
    page: Any, live_server: Any, expert: Any, manager: Any
) -> None:
    """256 px patches (a generator of another size) in two arms: shown at 2x, read by keyboard; the
    manager's report then compares the arms."""
    import numpy as np
    from playwright.sync_api import expect

    from gan.models import Source
    from tests.turing.fixtures import arms_study, patches_from_arrays

    rng = np.random.default_rng(3)

    def fields(n: int) -> list[Any]:
        small = rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
        return [np.kron(s, np.ones((32, 32, 1), dtype=np.uint8)) for s in small]

    real = patches_from_arrays("real 256", fields(6), source=Source.REAL)
    arms = {
        name: patches_from_arrays(f"{name} set", fields(3), source=Source.SYNTHETIC)
        for name in ("Kestrel", "Osprey")
    }
    study = arms_study(real, arms, [expert], items_per_reader=12, created_by=manager)
    _login(page, live_server.url, "expert-a")
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    # The profile comes first, and works by keyboard: Tab to each group, arrows choose, Enter sends.
    page.wait_for_url(f"**/studies/{study.pk}/profile/")
    page.get_by_role("radio", name="Pathologist").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.type("12")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # GI subspecialty: the first choice, yes
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # seen synthetic images: the second choice, no
    shot(page, "expert-profile")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/studies/{study.pk}/")
    _start(page)
    assignment = study.assignments.get()
    assert (
        assignment.profile_role,
        assignment.profile_years,
        assignment.profile_gi,
        assignment.profile_seen_synthetic,
    ) == ("pathologist", 12, True, False)
    progress = page.locator(".reader-progress-text")
    image = page.locator("img.patch")
    arm = dict(study.items.values_list("token", "arm__name"))
    order = study.assignments.get().order
    for index, token in enumerate(order):
        expect(progress).to_have_text(f"Patch {index + 1} of 12 · {index} answered")
        _drawn(page)
        # The short lock after an answer starts when its response arrives: wait it out from the new patch.
        page.wait_for_timeout(450 if index else 0)
        if index == 0:
            assert image.evaluate("img => [img.naturalWidth, img.width]") == [256, 512]  # 2x fits
            assert "Kestrel" not in page.content() and "Osprey" not in page.content()
        page.keyboard.press("5" if arm[token] == "Kestrel" else "3")
        page.keyboard.press("s" if arm[token] == "Kestrel" else "r")  # Kestrel is always caught
    page.wait_for_url(f"**/studies/{study.pk}/done/")
    assert Answer.objects.filter(assignment__study=study, label__isnull=False).count() == 12
    page.context.clear_cookies()  # signed out
    _login(page, live_server.url, "manager-a")
    page.goto(f"{live_server.url}/manage/evaluation/studies/{study.pk}/")
    arms = page.locator("section", has=page.locator("h2", has_text="Arms: which generator"))
    expect(arms).to_contain_text("Kestrel")
    expect(arms).to_contain_text("Osprey")
    rows = arms.locator("table.arms tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("0.0%")  # no Kestrel patch was called real
    expect(rows.nth(1)).to_contain_text("100.0%")  # every Osprey patch was
    for alt in ("Forest plot: each arm", "Stacked bars: for each arm"):
        chart = arms.locator(f'img[alt^="{alt}"]')
        expect(chart).to_be_visible()
        assert chart.evaluate("img => img.naturalWidth") > 0, alt
    shot(page, "manager-two-arm-report")


def test_the_run_page_of_a_collapsed_run_warns(
    page: Any, live_server: Any, manager: Any, lym_tum: Any
) -> None:
    from playwright.sync_api import expect

    from tests.gan.test_run_health import collapsed_run

    run = collapsed_run(lym_tum)
    _login(page, live_server.url, "manager-a")
    page.goto(f"{live_server.url}/manage/gan/runs/{run.pk}/")
    warnings = page.locator("section.run-warnings")
    expect(warnings).to_be_visible()
    expect(warnings).to_contain_text("Mode collapse at step 4")
    shot(page, "manager-run-collapse-warning")


def test_back_changes_an_answer_where_allowed_and_is_absent_where_not(
    page: Any, live_server: Any, study: Study, expert: Any, real_lym: Any, synthetic_lym: Any
) -> None:
    from playwright.sync_api import expect

    from tests.turing.fixtures import study_for
    from turing.models import StudyEvent

    changeable = study_for(
        real_lym, synthetic_lym, [expert], name="changes allowed", items_per_reader=6, allow_changes=True
    )
    progress = _reading(page, live_server, study)
    expect(page.locator("button.back")).to_have_count(0)  # this study allows no changes
    page.keyboard.press("b")
    page.keyboard.press("r")
    page.keyboard.press("Enter")
    expect(progress).to_have_text("Patch 2 of 10 · 1 answered")

    page.goto(f"{live_server.url}/studies/{changeable.pk}/?start=1")
    progress = page.locator(".reader-progress-text")

    def drawn() -> None:
        _drawn(page)

    for key, confidence, expected in (("r", "4", 1), ("s", "2", 2)):
        drawn()
        page.keyboard.press(key)
        page.keyboard.press(confidence)
        expect(progress).to_have_text(f"Patch {expected + 1} of 6 · {expected} answered")
        page.wait_for_timeout(450)
    page.keyboard.press("b")  # back to patch 2, its answer shown in the controls themselves
    expect(progress).to_have_text("Patch 2 of 6 · back at an earlier answer")
    expect(page.locator(".status")).to_contain_text("Your answer here: synthetic · 2")
    expect(page.locator("input[name=confidence]:checked")).to_have_value("2")
    expect(page.locator("button.answer[data-label=synthetic]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("button.return")).to_be_visible()
    shot(page, "expert-back-at-an-earlier-answer")
    drawn()
    page.keyboard.press("r")
    page.keyboard.press("5")  # changed in the controls: real, confidence 5, not saved half-way
    expect(page.locator(".status")).to_contain_text("Changed to real · 5: Enter")
    assert Answer.objects.get(assignment__study=changeable, position=1).label == "synthetic"
    page.keyboard.press("Enter")
    expect(progress).to_have_text("Patch 3 of 6 · 2 answered")
    expect(page.locator("button.return")).to_be_hidden()
    answer = Answer.objects.get(assignment__study=changeable, position=1)
    assert (answer.label, answer.confidence) == ("real", 5) and answer.changed_at is not None
    change = StudyEvent.objects.get(study=changeable, kind=StudyEvent.Kind.ANSWER_CHANGED)
    assert change.before["label"] == "synthetic" and change.after["confidence"] == 5


def test_the_why_synthetic_checklist_works_by_keyboard_and_never_follows_real(
    page: Any, live_server: Any, expert: Any, real_lym: Any, synthetic_lym: Any
) -> None:
    from playwright.sync_api import expect

    from tests.turing.fixtures import study_for

    settings = {"items_per_reader": 4, "ask_confidence": False, "ask_reasons": True}
    asking = study_for(real_lym, synthetic_lym, [expert], **settings)
    _login(page, live_server.url, "expert-a")
    page.goto(f"{live_server.url}/studies/{asking.pk}/?start=1")
    progress = page.locator(".reader-progress-text")
    image = page.locator("img.patch")
    _drawn(page)
    page.keyboard.press("s")
    checklist = page.locator("fieldset.reasons")
    expect(checklist).to_be_visible()
    expect(progress).to_have_text("Patch 1 of 4 · 0 answered")  # the patch stays up for the checklist
    page.keyboard.press("Space")  # the first reason has the focus: nuclei
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # cell arrangement
    image.scroll_into_view_if_needed()
    box = image.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.5)
    shot(page, "expert-why-synthetic")
    page.keyboard.press("r")  # no answer while the checklist is open
    page.keyboard.press("Enter")
    expect(checklist).to_be_hidden()
    expect(progress).to_have_text("Patch 2 of 4 · 1 answered")
    answer = Answer.objects.get(assignment__study=asking, position=0)
    assert answer.label == "synthetic" and answer.reasons == ["nuclei", "cell arrangement"]
    assert abs(answer.click_x - 0.25) < 0.02 and abs(answer.click_y - 0.5) < 0.02
    page.wait_for_timeout(450)
    _drawn(page)
    page.keyboard.press("r")
    expect(progress).to_have_text("Patch 3 of 4 · 2 answered")
    expect(checklist).to_be_hidden()  # never after "real"


def test_scale_bar_smoothing_and_shortcuts_that_can_be_turned_off(
    page: Any, live_server: Any, expert: Any, tiff_root: Any, synthetic_lym: Any, media_root: Any
) -> None:
    from playwright.sync_api import expect

    from gan.models import Dataset
    from gan.services import dataset_import

    report = dataset_import(
        path=tiff_root, name="tiffs", classes=["LYM", "TUM"], source_microns_per_pixel=0.5
    )
    real = Dataset.objects.get(pk=report.dataset_id)
    assert real.microns_per_pixel == pytest.approx(0.875)  # 0.5 um/px at 224 px, stored at 128 px
    study = create_study(
        name="with a scale",
        real_datasets=[real],
        synthetic_datasets=[synthetic_lym],
        items_per_reader=2,
        tissue_class=real.patches.first().tissue_class,  # type: ignore[union-attr]
        ask_profile=False,
        readers=[expert],
    )
    _login(page, live_server.url, "expert-a")
    page.goto(f"{live_server.url}/studies/{study.pk}/?start=1")
    _drawn(page)
    bar = page.locator(".scale-bar")
    expect(bar).to_contain_text("µm")
    label = bar.locator("small").text_content() or ""
    microns = float(label.split()[0])
    width = bar.locator("span").evaluate("e => e.getBoundingClientRect().width")
    assert width == pytest.approx(microns / (0.875 / 4), abs=1.5)  # 4x zoom: 0.21875 um per screen pixel
    page.keyboard.press("m")
    expect(page.locator(".viewer")).to_have_class(re.compile("smooth"))
    page.get_by_label("Single-key shortcuts").uncheck()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("r")  # turned off: the key does nothing
    page.wait_for_timeout(600)
    assert not Answer.objects.filter(assignment__study=study, label__isnull=False).exists()
    page.get_by_role("button", name="R Real").click()  # the buttons and radios still answer
    page.get_by_role("radio", name="3").check()
    expect(page.locator(".reader-progress-text")).to_contain_text("1 answered")


def test_pause_hides_the_patch_and_takes_no_answer(page: Any, live_server: Any, study: Study) -> None:
    from playwright.sync_api import expect

    progress = _reading(page, live_server, study)
    page.keyboard.press("p")
    expect(page.locator(".viewer")).to_have_class(re.compile("paused"))
    expect(page.locator("img.patch")).to_be_hidden()
    page.keyboard.press("r")
    page.keyboard.press("Enter")
    page.wait_for_timeout(600)
    expect(progress).to_have_text("Patch 1 of 10 · 0 answered")  # nothing taken while paused
    page.keyboard.press("p")
    expect(page.locator("img.patch")).to_be_visible()
    page.keyboard.press("r")
    page.keyboard.press("Enter")
    expect(progress).to_have_text("Patch 2 of 10 · 1 answered")
    answer = Answer.objects.get(assignment__study=study, position=0)
    assert answer.visible_ms is not None and answer.visible_ms < 5000  # the pause is not counted


VIEWPORTS = [(1280, 800), (1366, 657), (390, 844)]


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_the_whole_patch_and_the_answer_controls_fit_without_scrolling(
    browser: Any, live_server: Any, study: Study, width: int, height: int
) -> None:
    """At a desktop, a laptop and a phone viewport: the patch at an integer scale, wholly in view, and the
    label and confidence controls in view with it, before any scrolling."""
    Study.objects.filter(pk=study.pk).update(allow_changes=True)
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(PATIENCE_MS)
    try:
        _login(page, live_server.url, "expert-a")
        page.goto(f"{live_server.url}/studies/{study.pk}/?start=1")
        _drawn(page)
        image = page.locator("img.patch")
        scale = image.evaluate("img => img.width / img.naturalWidth")
        viewer = page.locator(".viewer").evaluate(
            "v => [v.clientWidth, v.clientHeight, v.scrollWidth, v.scrollHeight]"
        )
        boxes = {
            name: page.locator(selector).first.evaluate(
                "e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }"
            )
            for name, selector in {
                "patch": "img.patch",
                "real": "button.answer[data-label=real]",
                "synthetic": "button.answer[data-label=synthetic]",
                "confidence 1": "fieldset.confidence label:first-of-type",
                "confidence 5": "fieldset.confidence label:last-of-type",
            }.items()
        }
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"reader-{width}x{height}.png"))  # the first screen, as seen
        assert scale == int(scale) and scale >= 1
        assert viewer[2] <= viewer[0] and viewer[3] <= viewer[1]  # the whole patch, no scrolling inside
        for name, (left, top, right, bottom) in boxes.items():
            assert left >= 0 and right <= width and top >= 0 and bottom <= height, f"{name} is out of view"
    finally:
        context.close()


def test_the_wheel_zooms_about_the_pointer(page: Any, live_server: Any, study: Study) -> None:
    _reading(page, live_server, study)
    image = page.locator("img.patch")
    box = image.bounding_box()
    x, y = box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25  # a quarter in from the top-left
    under = (
        "([x, y]) => { const r = document.querySelector('img.patch').getBoundingClientRect(); "
        "return [(x - r.left) / r.width, (y - r.top) / r.height]; }"
    )
    before = page.evaluate(under, [x, y])
    page.mouse.move(x, y)
    page.mouse.wheel(0, -100)
    page.wait_for_function("document.querySelector('img.patch').width === 768")
    after = page.evaluate(under, [x, y])
    assert after == pytest.approx(before, abs=0.01)  # the same point of the patch is under the pointer
    page.keyboard.press("-")  # the keys zoom about the centre
    page.wait_for_function("document.querySelector('img.patch').width === 512")


def test_practice_then_the_blinded_test_with_repeat_reads_by_keyboard(
    page: Any, live_server: Any, real_lym: Any, synthetic_lym: Any, expert: Any
) -> None:
    from playwright.sync_api import expect

    from tests.turing.fixtures import study_for
    from turing.models import PracticeAnswer
    from turing.services import ProtocolOptions

    options = ProtocolOptions(
        practice_items=2, practice_datasets=[real_lym, synthetic_lym], repeat_share=0.2, repeat_gap=3
    )
    study = study_for(real_lym, synthetic_lym, [expert], name="practised", options=options)
    truths = dict(study.practice.values_list("token", "truth"))
    _login(page, live_server.url, "expert-a")
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    expect(page.locator("section.intro")).to_contain_text("2 practice patches")
    page.get_by_role("link", name="Start the practice").click()
    progress = page.locator(".reader-progress-text")
    feedback = page.locator(".feedback")
    for n in (1, 2):
        expect(progress).to_have_text(f"Practice patch {n} of 2 · {n - 1} answered")
        _drawn(page)
        token = page.locator("img.patch").get_attribute("src").rsplit("/", 1)[1]  # type: ignore[union-attr]
        page.wait_for_timeout(450)  # the answer lock, from when the patch shows
        page.keyboard.press("s")
        page.keyboard.press("Enter")  # a label without a confidence
        expect(feedback).to_be_visible()
        expect(feedback).to_contain_text(f"this patch was {truths[token]}. You answered synthetic.")
        if n == 1:
            shot(page, "practice-feedback")
        page.keyboard.press("r")  # nothing is taken while the truth is shown
        page.keyboard.press("Enter")
    expect(page.locator(".practice-over")).to_contain_text("The blinded test begins now")
    shot(page, "practice-over")
    assert PracticeAnswer.objects.filter(assignment__study=study).count() == 2
    page.get_by_role("link", name="Begin the blinded test").click()
    expect(page.locator(".test-begins")).to_be_visible()
    for n in range(12):
        expect(progress).to_have_text(f"Patch {n + 1} of 12 · {n} answered")
        _drawn(page)
        page.wait_for_timeout(450)  # the answer lock, from when the patch shows
        page.keyboard.press("r" if n % 2 else "s")
        page.keyboard.press("Enter")
    page.wait_for_url(f"**/studies/{study.pk}/done/")
    reads = sorted(Answer.objects.filter(assignment__study=study).values_list("read", flat=True))
    assert reads == [1] * 10 + [2] * 2
    assert not page.locator(".feedback").count()


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_a_walk_through_every_page_fits_each_screen_width(
    browser: Any,
    live_server: Any,
    study: Study,
    manager: Any,
    expert: Any,
    real_lym: Any,
    synthetic_lym: Any,
    width: int,
    height: int,
) -> None:
    """The pages a manager and an expert meet, at a desktop, a laptop and a phone: none is wider than
    the screen (a table too wide scrolls in its own box, never the page), each is screenshotted whole."""
    from django.urls import reverse

    from gan.models import Dataset, Source
    from turing.services import answer_next, answer_submit

    # A name as long as managers give them: every list box that offers it must still fit a phone.
    Dataset.objects.create(
        name="Held-out tiles of the second centre, scanned again at 40x, re-imported after the stain review",
        source=Source.REAL,
        patch_size=128,
    )
    assignment = study.assignments.get(reader=expert)
    for _ in range(4):  # a few answers, so that the report and the progress have something to show
        upcoming = answer_next(assignment=assignment)
        answer_submit(study_id=study.pk, reader=expert, token=upcoming.token, label="real", confidence=3)
    walks = {
        "manager-a": [
            ("dashboard", "/"),
            ("datasets", reverse("gan:dataset_list")),
            ("dataset-real", reverse("gan:dataset_detail", args=[real_lym.pk])),
            ("dataset-synthetic", reverse("gan:dataset_detail", args=[synthetic_lym.pk])),
            ("import", reverse("gan:dataset_import")),
            ("builder", reverse("turing:study_new")),
            ("studies", reverse("turing:study_list")),
            ("study", reverse("turing:study_detail", args=[study.pk])),
            ("report", reverse("evaluation:study_report", args=[study.pk])),
            ("evaluation", reverse("evaluation:report_list")),
            ("runs", reverse("gan:run_list")),
            ("train", reverse("gan:run_new")),
            ("sample", reverse("gan:sampling_new")),
        ],
        "expert-a": [
            ("my-studies", reverse("turing:my_studies")),
            ("reading", reverse("turing:study_read", args=[study.pk])),
        ],
    }
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(PATIENCE_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    too_wide = []
    try:
        for user, pages in walks.items():
            _login(page, live_server.url, user)
            for name, path in pages:
                response = page.goto(f"{live_server.url}{path}")
                assert response is not None and response.status == 200, (name, response and response.status)
                page.wait_for_load_state("networkidle")
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                if overflow > 1:
                    widest = page.evaluate(
                        "() => { let w = null; for (const e of document.querySelectorAll('main *')) {"
                        " const r = e.getBoundingClientRect();"
                        " const p = e.parentElement.getBoundingClientRect();"
                        " if (r.right > window.innerWidth + 1 && p.right <= window.innerWidth + 1)"
                        " w = [e.tagName + '.' + e.className, e.parentElement.tagName + '.' +"
                        " e.parentElement.className, r.width]; } return w; }"
                    )
                    too_wide.append(f"{name} ({overflow} px, widest {widest})")
                page.screenshot(path=str(ARTIFACTS / f"walk-{width}x{height}-{name}.png"), full_page=True)
            context.clear_cookies()  # the next user signs in afresh
    finally:
        context.close()
    assert not too_wide, f"wider than a {width} px screen: {', '.join(too_wide)}"
