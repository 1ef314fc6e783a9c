"""Every URL of the site, present and future, tried as anonymous, expert, another expert and study manager.

The URL list comes from the URL configuration itself: a new URL that is not classified below fails
the test, so it cannot slip in untested.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from core.models import Job
from evaluation.models import AugmentationExperiment, CopyingCheck, FidReport
from gan.models import Checkpoint, Dataset, Patch, SamplingRun, TrainingRun
from turing.models import Invitation, PracticeItem, Study
from turing.services import answer_next, answer_submit

pytestmark = pytest.mark.django_db

PUBLIC = {"healthz", "login", "logout", "api_schema", "admin:login", "turing:invitation_accept"}
SIGNED_IN = {
    "home",
    "password_change",
    "password_change_done",
    "turing:my_studies",
    "turing:api_me",
    "turing:password_set",
}
# The admin's autocomplete refuses (403) any request without its query parameters, study managers' too.
NEEDS_PARAMETERS = {"admin:autocomplete"}
# Results and ground truth are never added or deleted by hand, by study managers either.
NOBODY = {
    "admin:turing_studyitem_add",
    "admin:turing_studyitem_delete",
    "admin:turing_answer_add",
    "admin:turing_answer_delete",
    "admin:turing_studyevent_add",
    "admin:turing_studyevent_delete",
    # Studies come from the builder only; a reader's assignment is part of the record.
    "admin:turing_study_add",
    "admin:turing_assignment_add",
    "admin:turing_assignment_delete",
    "admin:turing_study_delete",  # the sample study has answers: a study with any is never deleted
}
READER = {
    "turing:study_read",
    "turing:study_done",
    "turing:study_profile",
    "turing:api_answered",
    "turing:api_reasons",
    "turing:item_image",
    "turing:api_next",
    "turing:api_answer",
    "turing:api_progress",
    "turing:study_practice",
    "turing:practice_image",
    "turing:api_practice_next",
    "turing:api_practice_answer",
}
MANAGER_PREFIXES = ("admin:", "gan:", "evaluation:")
# Accounts are the administrators' (superusers): study managers get 403 there.
ADMINISTRATOR_PREFIXES = ("admin:auth_", "admin:turing_study_")  # studies: the builder is the managers'
MANAGER = {
    "dashboard",
    "job_detail",
    "job_status",
    "job_cancel",
    "api_study_export",
    "turing:study_list",
    "turing:study_new",
    "turing:study_detail",
    "turing:study_invite",
    "turing:study_remind",
    "turing:study_status",
    "turing:study_live_status",
    "turing:invitation_manage",
    "turing:reader_remove",
}


def _names(
    resolver: URLResolver | None = None, namespace: str = "", outer: dict[str, Any] | None = None
) -> list[tuple[str, dict[str, Any], URLPattern]]:
    """Every named URL, the converters of its whole path (an include's prefix may hold some) and its
    own pattern."""
    resolver = resolver or get_resolver()
    found = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found += _names(entry, inner, (outer or {}) | entry.pattern.converters)
        elif isinstance(entry, URLPattern) and entry.name:
            found.append((namespace + entry.name, (outer or {}) | entry.pattern.converters, entry))
    return found


def _access(name: str) -> str:
    for label, names in (
        ("public", PUBLIC),
        ("signed-in", SIGNED_IN),
        ("reader", READER),
        ("manager", MANAGER),
    ):
        if name in names:
            return label
    if name.startswith(MANAGER_PREFIXES):
        return "manager"
    raise AssertionError(f"URL {name!r} is not in the permission matrix: classify it in {__file__}")


@pytest.fixture
def world(study: Study, expert: Any, manager: Any) -> dict[str, Any]:
    """One object of every kind a URL can name."""
    job = Job.objects.create(kind="ping", task_name="core.ping")
    dataset = Dataset.objects.filter(source="real").first()
    synthetic = Dataset.objects.filter(source="synthetic").first()
    run = TrainingRun.objects.create(
        name="run",
        dataset=dataset,
        config={"steps": 1, "classes": ["LYM"]},
        job=Job.objects.create(kind="training", task_name="gan.training_run"),
    )
    checkpoint = Checkpoint.objects.create(run=run, step=1, file="checkpoints/none.pt")
    sampling = SamplingRun.objects.create(
        checkpoint=checkpoint,
        tissue_class="LYM",
        count=1,
        dataset=Dataset.objects.create(name="s", source="synthetic"),
        job=Job.objects.create(kind="sampling", task_name="gan.sampling_run"),
    )
    report = FidReport.objects.create(
        sampling_run=sampling,
        real_dataset=dataset,
        n_images=2,
        job=Job.objects.create(kind="fid", task_name="evaluation.fid_report"),
    )
    experiment = AugmentationExperiment.objects.create(
        train_dataset=dataset,
        test_dataset=synthetic,
        sampling_run=sampling,
        tissue_class="LYM",
        config={},
        job=Job.objects.create(kind="augmentation", task_name="neural.augmentation"),
    )
    # One answer given, in a study that allows changes, so that Back (`api_answered`) has one to show.
    Study.objects.filter(pk=study.pk).update(allow_changes=True)
    first = answer_next(assignment=study.assignments.get()).token
    answer_submit(study_id=study.pk, reader=expert, token=first, label="real", confidence=3)
    token = answer_next(assignment=study.assignments.get()).token
    # A practice patch in the reader's practice order, for the practice pages.
    practice = PracticeItem.objects.create(study=study, patch=Patch.objects.first(), truth="real", png=b"png")
    study.assignments.update(practice_order=[practice.token])
    return {
        "job_id": job.pk,
        "dataset_id": dataset.pk,
        "patch_id": Patch.objects.first().pk,
        "study_id": study.pk,
        "token": token,
        "turing:practice_image:token": practice.token,
        "kind": "answers",
        "report_id": report.pk,
        "experiment_id": experiment.pk,
        "arm_id": study.arms.get().pk,
        "position": 0,
        "check_id": CopyingCheck.objects.create(
            synthetic_dataset=synthetic,
            reference_dataset=dataset,
            job=Job.objects.create(kind="copying", task_name="evaluation.copying_check"),
        ).pk,
        "gan:run_id": run.pk,
        "gan:sampling_detail:run_id": sampling.pk,
        "object_id": str(study.pk),
        "app_label": "turing",
        "content_type_id": 1,
        "user_id": expert.pk,
        "invitation_id": Invitation.objects.create(
            study=study,
            email="x@example.org",
            reader=expert,
            secret_hash="0" * 64,
            sent_at=timezone.now(),
            expires_at=timezone.now(),
        ).pk,
        "action": "revoke",
        "assignment_id": study.assignments.first().pk,
        # Account pages name objects that exist, whatever ids the database gives them: admin answers
        # a missing object with a redirect before it checks permissions.
        **{f"admin:auth_user_{view}:object_id": str(expert.pk) for view in ("change", "delete", "history")},
        **{
            f"admin:auth_group_{view}:object_id": str(Group.objects.get(name="experts").pk)
            for view in ("change", "delete", "history")
        },
    }


def _kwargs(name: str, converters: dict[str, Any], world: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key in converters:
        out[key] = world.get(f"{name}:{key}", world.get(f"gan:{key}") if name.startswith("gan:") else None)
        if out[key] is None:
            out[key] = world.get(key, uuid.uuid4().hex[:8])
    return out


def test_every_url_is_guarded_as_its_role_needs(
    world: dict[str, Any], expert: Any, other_expert: Any, manager: Any, administrator: Any
) -> None:
    clients = {
        "anonymous": Client(),
        "expert": Client(),
        "other": Client(),
        "manager": Client(),
        "administrator": Client(),
    }
    clients["expert"].force_login(expert)
    clients["other"].force_login(other_expert)
    clients["manager"].force_login(manager)
    clients["administrator"].force_login(administrator)
    failures: list[str] = []
    skipped: list[str] = []
    names = _names()
    assert len(names) > 40
    for name, converters, _ in names:
        access = _access(name)
        try:
            url = reverse(name, kwargs=_kwargs(name, converters, world))
        except NoReverseMatch:
            skipped.append(name)
            continue
        status = {who: client.get(url).status_code for who, client in clients.items()}
        # A POST-only endpoint: try it as such (not logging out, which would end the other checks' sessions).
        if status["expert"] == 405 and status["manager"] == 405 and access != "public":
            status = {who: client.post(url, {}).status_code for who, client in clients.items()}
        if any(code >= 500 for code in status.values()):
            failures.append(f"{name} {url}: server error {status}")
        if access == "public":
            ok = status["anonymous"] in (200, 302, 405)
        elif name in NEEDS_PARAMETERS or name in NOBODY:
            ok = status["anonymous"] in (302, 403) and status["expert"] == 403
            ok = ok and (name not in NOBODY or status["manager"] == status["administrator"] == 403)
        elif name.startswith(ADMINISTRATOR_PREFIXES):
            ok = (
                status["anonymous"] in (302, 403)
                and status["expert"] == status["manager"] == 403
                and status["administrator"] in (200, 302, 404, 405)
            )
        elif access == "signed-in":
            ok = status["anonymous"] in (302, 403) and status["expert"] in (200, 302, 405)
        elif access == "reader":
            ok = (
                status["anonymous"] in (302, 403)
                and status["expert"] in (200, 400, 405)
                and status["other"] == 404
                and status["manager"] == status["administrator"] == 404
            )
        else:
            ok = (
                status["anonymous"] in (302, 403)
                and status["expert"] == 403
                and status["other"] == 403
                and status["manager"] in (200, 302, 404, 405)
                and status["administrator"] in (200, 302, 404, 405)
            )
        if not ok:
            failures.append(f"{name} {url} ({access}): {status}")
    assert not failures, "\n".join(failures)
    # Only the admin's app index (a regex of app labels) cannot take the generic sample values.
    assert set(skipped) <= {"admin:app_list"}, skipped


BAD_IDS = ("99999999999999999999", "9223372036854775808", "-1", "abc", "1e3", "%C2%B9")


def test_ids_out_of_range_or_not_numbers_are_a_plain_404(
    world: dict[str, Any], expert: Any, manager: Any
) -> None:
    """Every URL that takes an id, with ids no database key can hold: never a server error, and on
    our own URLs always a 404 (others' studies and missing ones alike)."""
    from core.converters import IdConverter

    clients = {"anonymous": Client(), "expert": Client(), "manager": Client()}
    clients["expert"].force_login(expert)
    clients["manager"].force_login(manager)
    marker, tried, failures = "987654321", 0, []
    for name, converters, _ in _names():
        for key, converter in converters.items():
            is_id = isinstance(converter, IdConverter) or key == "object_id"
            if not is_id:
                continue
            kwargs = _kwargs(name, converters, world) | {key: marker}
            url = reverse(name, kwargs=kwargs)
            for bad in BAD_IDS:
                bad_url = url.replace(marker, bad)
                for who, client in clients.items():
                    tried += 1
                    status = client.get(bad_url).status_code
                    if status >= 500 or (not name.startswith("admin:") and status != 404):
                        failures.append(f"{name} {bad_url} as {who}: {status}")
    assert tried > 200
    assert not failures, "\n".join(failures)
