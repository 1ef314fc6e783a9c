from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from core.roles import is_expert, is_study_manager

pytestmark = pytest.mark.django_db


def test_create_user_makes_an_expert(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEW_PASSWORD", "a-long-reader-pass-7")
    out = io.StringIO()
    call_command("create_user", "reader1", "--role", "expert", "--password-env", "NEW_PASSWORD", stdout=out)
    user = get_user_model().objects.get(username="reader1")
    assert is_expert(user) and not is_study_manager(user)
    assert user.check_password("a-long-reader-pass-7")
    assert "a-long-reader-pass-7" not in out.getvalue()


def test_create_user_makes_a_study_manager_with_a_printed_password() -> None:
    out = io.StringIO()
    call_command("create_user", "boss", "--role", "manager", stdout=out)
    user = get_user_model().objects.get(username="boss")
    assert is_study_manager(user) and not is_expert(user)
    password = out.getvalue().split("Password: ")[1].strip()
    assert user.check_password(password)


def test_create_user_refuses_duplicates_and_weak_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    call_command("create_user", "dup", "--role", "expert", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_user", "dup", "--role", "expert", stdout=io.StringIO())
    monkeypatch.setenv("WEAK", "123")
    with pytest.raises(CommandError, match="too short"):
        call_command(
            "create_user", "weak", "--role", "expert", "--password-env", "WEAK", stdout=io.StringIO()
        )


def test_demo_setup_is_idempotent(media_root: object) -> None:
    out = io.StringIO()
    call_command("demo_setup", stdout=out)
    assert "Demo CRC-VAL-HE-7K: 96 new patches" in out.getvalue()
    assert "user manager" in out.getvalue()
    again = io.StringIO()
    call_command("demo_setup", stdout=again)
    assert "Demo CRC-VAL-HE-7K: 0 new patches" in again.getvalue()
    assert get_user_model().objects.count() == 4  # an administrator, a study manager, two experts
    from gan.models import TrainingRun

    run = TrainingRun.objects.get()  # queued once, not again
    assert run.is_demo and run.sample_after["tissue_class"] == "LYM" and run.job.queue == "gpu"
