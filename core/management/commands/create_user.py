from __future__ import annotations

import os
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core import services


class Command(BaseCommand):
    help = "Create an expert (a reader), a study manager, or an administrator (who also manages accounts)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=services.ROLES, required=True)
        parser.add_argument("--email", default="")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--password-env", metavar="VAR", help="read the password from this variable")
        source.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )
        parser.add_argument(
            "--no-validate", action="store_true", help="skip password strength checks (demo only)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = None
        if options["password_env"]:
            password = os.environ.get(options["password_env"])
            if not password:
                raise CommandError(f"the variable {options['password_env']} is unset or empty")
        elif options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\n")
        try:
            user, password = services.user_create(
                username=options["username"],
                role=options["role"],
                password=password,
                email=options["email"],
                validate=not options["no_validate"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        role = {"manager": "study manager", "administrator": "administrator"}.get(options["role"], "expert")
        self.stdout.write(f"Created {role} {user.username!r}.")
        if not (options["password_env"] or options["password_stdin"]):
            self.stdout.write(f"Password: {password}")
