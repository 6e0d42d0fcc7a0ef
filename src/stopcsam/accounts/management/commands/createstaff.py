from __future__ import annotations

import base64
import getpass
import sys
from typing import Any

import segno
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stopcsam.accounts.exceptions import UsernameTakenError
from stopcsam.accounts.forms import PASSWORD_MAX_LENGTH
from stopcsam.accounts.models import LANGUAGE_CHOICES, Role, Site, StaffUser
from stopcsam.accounts.services import staff_create


class Command(BaseCommand):
    help = "Create a member of staff and print the TOTP key for their authenticator app."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--site", required=True, help="Site code, e.g. DE")
        parser.add_argument("--languages", default="en", help="Comma-separated, e.g. de,en")
        parser.add_argument("--display-name", default="")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from standard input instead of a prompt.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        site = Site.objects.filter(code=options["site"].upper()).first()
        if site is None:
            raise CommandError(f"No site with code {options['site']!r}.")
        languages = [code.strip() for code in options["languages"].split(",") if code.strip()]
        known = {code for code, _ in LANGUAGE_CHOICES}
        if not languages or set(languages) - known:
            raise CommandError(f"Languages must be among {sorted(known)}.")
        password = self._password(options["password_stdin"])
        try:
            # With the account to be, so the password is compared with the username too.
            validate_password(password, user=StaffUser(username=options["username"]))
            user, device = staff_create(
                username=options["username"],
                password=password,
                role=options["role"],
                site=site,
                languages=languages,
                display_name=options["display_name"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except UsernameTakenError as exc:
            raise CommandError("This username is taken.") from exc
        secret = base64.b32encode(bytes.fromhex(device.key)).decode().rstrip("=")
        uri = (
            f"otpauth://totp/{settings.OTP_TOTP_ISSUER}:{user.username}"
            f"?secret={secret}&issuer={settings.OTP_TOTP_ISSUER}"
        )
        self.stdout.write(f"Created {user.username} ({user.get_role_display()}, {site.code}).")
        self.stdout.write(f"TOTP key for the authenticator app: {secret}\n{uri}")
        if sys.stdout.isatty():
            segno.make(uri).terminal(compact=True)

    def _password(self, from_stdin: bool) -> str:
        if from_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password again: "):
                raise CommandError("The two passwords differ.")
        if len(password) > PASSWORD_MAX_LENGTH:
            # The login form takes no more: the account could never log in.
            raise CommandError(f"Use at most {PASSWORD_MAX_LENGTH} characters.")
        return password
