from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.oath import TOTP

from stopcsam.accounts.demo_data import demo_totp_key


class Command(BaseCommand):
    help = "Demo mode only: print the current one-time code of a demo staff account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_MODE:
            raise CommandError("One-time codes are shown only in demo mode (STOPCSAM_DEMO=1).")
        totp = TOTP(bytes.fromhex(demo_totp_key(options["username"])))
        self.stdout.write(f"{totp.token():06d}")
