"""One spelling of a login name, used wherever a name is stored, typed or counted.

A name is stripped, NFKC-normalised (full-width and compatibility forms become plain letters) and
case-folded. Accounts are created under that form, the login form signs in by it, and the log-in
limiter counts failures under it, so `"Rt-Victim "`, its full-width spelling and `rt-victim` are one account
with one counter.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AuthenticationForm


def login_name(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip().casefold()


class LoginForm(AuthenticationForm):
    def clean_username(self) -> str:
        return login_name(self.cleaned_data.get("username") or "")


class _NormalisedName:
    """For the admin's user forms: the name is stored in its one spelling."""

    cleaned_data: dict[str, Any]

    def clean_username(self) -> str:
        name = login_name(self.cleaned_data.get("username") or "")
        if not name:
            raise forms.ValidationError("A user name is required.")
        return name


class AdminUserCreationForm(_NormalisedName, auth_forms.AdminUserCreationForm):
    pass


class AdminUserChangeForm(_NormalisedName, auth_forms.UserChangeForm):
    pass


class NormalisedUserAdmin(UserAdmin):
    add_form = AdminUserCreationForm
    form = AdminUserChangeForm
