"""Existing accounts and failure counts in the one spelling of a login name (core.accounts.login_name)."""

import unicodedata

from django.db import migrations


def _login_name(raw):
    return unicodedata.normalize("NFKC", raw).strip().casefold()


def normalise(apps, schema_editor):
    User = apps.get_model("auth", "User")
    taken = set(User.objects.values_list("username", flat=True))
    for user in User.objects.all():
        name = _login_name(user.username)
        if name != user.username and name and name not in taken:  # two spellings of one name: left as is
            taken.discard(user.username)
            taken.add(name)
            user.username = name
            user.save(update_fields=["username"])
    LoginFailure = apps.get_model("core", "LoginFailure")
    for failure in LoginFailure.objects.all():
        name = _login_name(failure.username)
        if name != failure.username:
            LoginFailure.objects.filter(pk=failure.pk).update(username=name)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("core", "0003_job_enqueued_at"),
    ]

    operations = [migrations.RunPython(normalise, migrations.RunPython.noop)]
