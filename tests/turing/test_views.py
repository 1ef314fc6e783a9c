from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.services import user_create
from gan.models import Dataset
from tests.turing.fixtures import answer_next_item, builder_form, plan_study, study_for
from turing.forms import DEFAULT_ITEMS_PER_READER
from turing.models import Answer, Study
from turing.services import ProtocolOptions, answer_next, answer_submit

pytestmark = pytest.mark.django_db


def test_builder_previews_counts_without_creating(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    response = manager_client.post(
        reverse("turing:study_new"), builder_form(real_lym, synthetic_lym, expert) | {"preview": "1"}
    )
    assert response.status_code == 200
    assert (
        b"4 real (of 12 in the pool)" in response.content
        and b"4 synthetic (of 12 in the pool)" in response.content
    )
    assert not Study.objects.exists()


def test_builder_estimates_the_readers_a_margin_needs(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any, settings: Any
) -> None:
    settings.DEFAULT_EQUIVALENCE_MARGIN = 0.12
    form = manager_client.get(reverse("turing:study_new")).content.decode()
    assert 'name="equivalence_margin" value="0.12"' in form  # new studies start from the setting
    data = builder_form(real_lym, synthetic_lym, expert, items_per_reader=24) | {"preview": "1"}
    wide = manager_client.post(
        reverse("turing:study_new"), data | {"equivalence_margin": 0.3}
    ).content.decode()
    narrow = manager_client.post(
        reverse("turing:study_new"), data | {"equivalence_margin": 0.05}
    ).content.decode()
    assert "Planned from planning values from the literature" in wide
    assert "readers</strong> reading these 24 items each" in wide
    assert "more readers alone would not do it at 24 items" in narrow


def test_builder_stores_the_protocol_with_the_study(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    data = builder_form(real_lym, synthetic_lym, expert, equivalence_margin=0.07, alpha=0.01)
    manager_client.post(reverse("turing:study_new"), data | {"create": "1"})
    study = Study.objects.get()
    assert (study.equivalence_margin, study.alpha) == (0.07, 0.01)


def test_builder_refuses_a_study_larger_than_its_pools(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    data = builder_form(real_lym, synthetic_lym, expert, items_per_reader=40) | {"create": "1"}
    response = manager_client.post(reverse("turing:study_new"), data)
    assert (
        b"asks for 20 real LYM items per reader, but the real pool holds 12 LYM patches" in response.content
    )
    assert not Study.objects.exists()


def test_builder_creates_and_the_detail_page_shows_progress(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any, other_expert: Any
) -> None:
    response = manager_client.post(
        reverse("turing:study_new"), builder_form(real_lym, synthetic_lym, expert) | {"create": "1"}
    )
    study = Study.objects.get()
    assert response["Location"] == reverse("turing:study_detail", args=[study.pk])
    assignment = study.assignments.get()
    answer_next_item(assignment)
    detail = manager_client.get(response["Location"]).content.decode()
    assert "expert-a" in detail and "1 of 8" in detail
    manager_client.post(reverse("turing:study_invite", args=[study.pk]), {"readers": [other_expert.pk]})
    assert study.assignments.count() == 2
    asked = manager_client.post(reverse("turing:study_status", args=[study.pk]), {"status": "closed"})
    study.refresh_from_db()
    assert study.is_open and b"1 reader is part-way through" in asked.content  # asked, not done
    assert b"expert-a: 1 of 8 answered" in asked.content
    done = manager_client.post(
        reverse("turing:study_status", args=[study.pk]), {"status": "closed", "confirm": "1"}, follow=True
    )
    study.refresh_from_db()
    assert not study.is_open and b"The study is closed" in done.content


def test_reader_pages(expert_client: Client, study: Study) -> None:
    intro = expert_client.get(reverse("turing:study_read", args=[study.pk])).content.decode()
    assert "Before the first patch" in intro and "<strong>10 patches</strong>" in intro
    assert "about <strong>1 minute</strong>" in intro
    assert 'aria-keyshortcuts="R"' not in intro  # no patch before the instructions
    page = expert_client.get(reverse("turing:study_read", args=[study.pk]) + "?start=1")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'aria-keyshortcuts="R"' in html and 'aria-keyshortcuts="S"' in html and "Confidence" in html
    assert "Resumed at" not in html
    assignment = study.assignments.get()
    answer_next_item(assignment)
    again = expert_client.get(reverse("turing:study_read", args=[study.pk])).content.decode()
    assert "Resumed at patch 2 of 10: your 1 earlier answer is saved." in again
    for _ in range(9):
        answer_next_item(assignment, "synthetic")
    finished = expert_client.get(reverse("turing:study_read", args=[study.pk]))
    assert finished["Location"] == reverse("turing:study_done", args=[study.pk])
    assert b"10 of 10" in expert_client.get(finished["Location"]).content


def test_a_study_is_copied_into_the_builder_for_the_next_round(
    manager_client: Client, study: Study, expert: Any
) -> None:
    Study.objects.filter(pk=study.pk).update(equivalence_margin=0.07, alpha=0.01)
    detail = manager_client.get(reverse("turing:study_detail", args=[study.pk])).content.decode()
    link = f"{reverse('turing:study_new')}?copy={study.pk}"
    assert link in detail
    form = manager_client.get(link).content.decode()
    assert 'value="LYM study (copy)"' in form and 'name="equivalence_margin" value="0.07"' in form
    data = {
        "name": "LYM study, round 2",
        "tissue_class": "LYM",
        "real_datasets": [d.pk for d in study.real_datasets.all()],
        "synthetic_datasets": [d.pk for d in study.synthetic_datasets.all()],
        "items_per_reader": 10,
        "real_parts": 1,
        "synthetic_parts": 1,
        "same_items_for_all": "on",
        "ask_confidence": "on",
        "equivalence_margin": 0.07,
        "alpha": 0.01,
        "readers": [expert.pk],
        "shortcut_confirmed": "on",  # the test's flat synthetic patches: a shortcut at a glance
        "create": "1",
    }
    manager_client.post(reverse("turing:study_new"), data)
    copy = Study.objects.get(name="LYM study, round 2")
    assert (copy.equivalence_margin, copy.alpha) == (0.07, 0.01) and copy.seed != study.seed
    assert list(copy.assignments.values_list("reader", flat=True)) == [expert.pk]
    assert Study.objects.get(pk=study.pk).name == "LYM study"  # the original is untouched


def test_the_study_page_and_list_show_progress_under_pseudonyms(
    manager_client: Client, expert_client: Client, study: Study, expert: Any
) -> None:
    assignment = study.assignments.get()
    for _ in range(2):
        token = answer_next(assignment=assignment).token
        answer_submit(study_id=study.pk, reader=expert, token=token, label="real", confidence=2)
    status = manager_client.get(reverse("turing:study_live_status", args=[study.pk])).json()
    assert status["status"] == "open" and status["answers"] == 2
    (reader,) = status["readers"]
    assert (reader["pseudonym"], reader["username"], reader["answered"], reader["total"]) == (
        "R1",
        "expert-a",
        2,
        10,
    )
    assert reader["last_answer"] and reader["minutes"] >= 0 and not reader["finished"]
    # The live table writes times as the page does (the site's zone, to the minute) and a reading of
    # seconds as under a minute, not as 0.
    last = Answer.objects.filter(assignment=assignment).latest("answered_at").answered_at
    assert reader["last_answer_text"] == timezone.localtime(last).strftime("%Y-%m-%d %H:%M")
    assert reader["time_text"] == "under 1 min"
    assert expert_client.get(reverse("turing:study_live_status", args=[study.pk])).status_code == 403
    listing = manager_client.get(reverse("turing:study_list")).content.decode()
    assert "2 of 10" in listing
    detail = manager_client.get(reverse("turing:study_detail", args=[study.pk])).content.decode()
    assert reverse("evaluation:study_report", args=[study.pk]) in detail and "R1 (expert-a)" in detail


def test_the_builder_fits_an_untouched_default_and_says_each_problem_once(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    fitted = manager_client.post(
        reverse("turing:study_new"),
        builder_form(real_lym, synthetic_lym, expert, items_per_reader=100) | {"preview": "1"},
    ).content.decode()
    assert "Items per reader set to 24" in fitted and 'name="items_per_reader" value="24"' in fitted
    assert 'type="checkbox" name="real_datasets"' in fitted and "/manage/gan/patches/" in fitted  # thumbnails
    chosen = builder_form(real_lym, synthetic_lym, expert, items_per_reader=40) | {"create": "1"}
    refused = manager_client.post(reverse("turing:study_new"), chosen).content.decode()
    problem = "asks for 20 real LYM items per reader, but the real pool holds 12 LYM patches"
    assert refused.count(problem) == 1 and not Study.objects.exists()


def test_the_builder_plans_from_a_finished_study_the_manager_chooses_at_the_new_designs_ratio(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    other = user_create(username="second-reader", role="expert", password="x" * 20, validate=False)[0]
    pilot_study = study_for(real_lym, synthetic_lym, readers=[expert, other], items_per_reader=8)
    for assignment in pilot_study.assignments.all():
        while not answer_next(assignment=assignment).finished:
            answer_next_item(assignment, "synthetic", confidence=3)
    builder = manager_client.get(reverse("turing:study_new")).content.decode()
    assert f'<option value="{pilot_study.pk}">' in builder and "2 finished readers" in builder
    data = builder_form(real_lym, synthetic_lym, expert, items_per_reader=8) | {"preview": "1"}
    chosen = manager_client.post(reverse("turing:study_new"), data | {"pilot": pilot_study.pk})
    assert (
        f"Planned from the study &#x27;{pilot_study.name}&#x27; (2 readers x 8 items"
        in chosen.content.decode()
    )
    assert "at this design's own ratio" in chosen.content.decode()


def test_the_study_page_shows_the_planned_designs_power(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    study = study_for(real_lym, synthetic_lym, readers=[expert], items_per_reader=8)
    page = manager_client.get(reverse("turing:study_detail", args=[study.pk])).content.decode()
    assert "1 planned reader (at least those enrolled when the first answer arrives)" in page
    assert "Power of this design to show equivalence" in page and "about 0%" in page  # below 4 readers


def test_no_page_or_api_response_of_the_reading_session_is_stored(
    expert_client: Client, study: Study
) -> None:
    """A browser's Back/Forward must never show a stale item: every reading page and API answer is
    no-store (item images are the exception: one blinded image per token, cached alike for every item)."""
    pages = [
        reverse("turing:my_studies"),
        reverse("turing:study_done", args=[study.pk]),
        reverse("turing:study_read", args=[study.pk]),
        reverse("turing:study_read", args=[study.pk]) + "?start=1",
        f"/api/studies/{study.pk}/next",
        f"/api/studies/{study.pk}/progress",
    ]
    for url in pages:
        response = expert_client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url
    token = expert_client.get(f"/api/studies/{study.pk}/next").json()["item"]["token"]
    saved = expert_client.post(
        f"/api/studies/{study.pk}/answers", {"token": token, "label": "real"}, content_type="application/json"
    )
    assert saved.status_code == 201 and "no-store" in saved["Cache-Control"]
    refused = expert_client.post(f"/api/studies/{study.pk}/answers", {}, content_type="application/json")
    assert refused.status_code == 400 and "no-store" in refused["Cache-Control"]


def test_no_expert_page_names_the_public_datasets_of_the_real_patches(
    expert_client: Client, manager_client: Client, study: Study
) -> None:
    """A name like NCT-CRC-HE-100K tells an expert where the real patches can be looked up by pixels."""
    for url in (
        reverse("turing:my_studies"),
        reverse("turing:study_read", args=[study.pk]),
        reverse("turing:study_read", args=[study.pk]) + "?start=1",
    ):
        html = expert_client.get(url).content.decode()
        assert "NCT-CRC" not in html and "CRC-VAL" not in html and "Zenodo" not in html, url
    assert "Zenodo 1214456" in manager_client.get(reverse("turing:study_list")).content.decode()


def test_the_builder_says_whether_readers_get_a_scale_bar(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    page = manager_client.post(reverse("turing:study_new"), builder_form(real_lym, synthetic_lym, expert))
    assert "Readers get no scale bar: the real pool" in page.content.decode()
    real_lym.microns_per_pixel = 0.875
    real_lym.save(update_fields=["microns_per_pixel"])
    page = manager_client.post(reverse("turing:study_new"), builder_form(real_lym, synthetic_lym, expert))
    assert "Readers get a scale bar (0.875 µm per pixel" in page.content.decode()


def test_the_builder_previews_before_a_name_is_typed_and_fits_what_practice_takes(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    """No name yet: the preview is shown all the same; creating asks for the name. An untouched default
    count is fitted to what the pools fill once practice has taken its patches, so that the fitted count
    is one the builder then accepts."""
    form = builder_form(real_lym, synthetic_lym, expert, name="", items_per_reader=DEFAULT_ITEMS_PER_READER)
    form |= {"practice_items": 4, "practice_datasets": [real_lym.pk, synthetic_lym.pk]}
    page = manager_client.post(reverse("turing:study_new"), form).content.decode()
    fitted = int(re.search(r"Items per reader set to (\d+)", page).group(1))
    plan = plan_study(
        real_datasets=[real_lym],
        synthetic_datasets=[synthetic_lym],
        items_per_reader=fitted,
        options=ProtocolOptions(practice_items=4, practice_datasets=[real_lym, synthetic_lym]),
    )
    assert '<h2 id="preview-title">Preview</h2>' in page and plan.ok, plan.problems
    assert fitted == plan.max_items < DEFAULT_ITEMS_PER_READER
    created = manager_client.post(
        reverse("turing:study_new"), form | {"items_per_reader": fitted, "create": "1"}
    )
    assert "The study needs a name." in created.content.decode() and not Study.objects.exists()


def test_empty_instructions_name_the_generators_of_the_chosen_sets(
    manager_client: Client, real_lym: Dataset, synthetic_lym: Dataset, expert: Any
) -> None:
    synthetic_lym.provenance = {"generator": {"name": "PathLDM (fine-tuned)", "kind": "diffusion"}}
    synthetic_lym.save(update_fields=["provenance"])
    form = builder_form(real_lym, synthetic_lym, expert, instructions="")
    assert manager_client.post(reverse("turing:study_new"), form | {"create": "1"}).status_code == 302
    instructions = Study.objects.get().instructions
    assert "made by a generative model (PathLDM (fine-tuned))" in instructions and "GAN" not in instructions


def test_the_builder_shows_every_field_once_in_its_sections(manager_client: Any, db: Any) -> None:
    from turing.forms import StudyForm

    named = [name for _, _, names in StudyForm.SECTIONS for name in names]
    assert sorted(named) == sorted(StudyForm.base_fields)  # none left out, none twice
    form = StudyForm({"alpha": "7", "tissue_class": "LYM"})
    form.is_valid()
    opened = {s["key"]: s["open"] for s in form.sections()}
    assert opened["basic"] and opened["verdict"]  # a folded section with an error opens
    assert not opened["practice"] and not opened["shortcuts"]
    assert form.sections(advise=True)[1]["key"] == "shortcuts" and form.sections(advise=True)[1]["open"]
    page = manager_client.get(reverse("turing:study_new")).content.decode()
    assert page.count('<details class="builder-section"') == len(StudyForm.SECTIONS) - 1
    assert " open>" not in page.split('id="section-shortcuts"')[1].split("\n")[0]
