"""Builds a study on the database that DATABASE_URL names, for fault tests that run the whole site
on a server of their own: migrates, makes patches, experts, a study and a logged-in session per
expert, then prints {"study": id, "readers": [[name, cookie], ...]} as JSON.

    DATABASE_URL=... python -m tests.turing.site_setup --readers 4 --items 200
"""

from __future__ import annotations

import argparse
import json
import os
import secrets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--items", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from core.services import user_create
    from gan.models import Source
    from tests.sessions import session_key_for
    from tests.turing.fixtures import make_patches, study_for

    call_command("migrate", verbosity=0)
    half = args.items // 2 + 1
    real = make_patches("real", half, source=Source.REAL, seed=1)
    synthetic = make_patches("synthetic", half, source=Source.SYNTHETIC, seed=2)
    experts = [
        user_create(username=f"reader{i}", role="expert", password=secrets.token_urlsafe(), validate=False)[0]
        for i in range(args.readers)
    ]
    study = study_for(
        real, synthetic, experts, name="fault study", items_per_reader=args.items, ask_profile=True
    )
    cookie = settings.SESSION_COOKIE_NAME
    readers = [[user.username, f"{cookie}={session_key_for(user)}; csrftoken={'c' * 32}"] for user in experts]
    print(json.dumps({"study": study.pk, "readers": readers}))


if __name__ == "__main__":
    main()
