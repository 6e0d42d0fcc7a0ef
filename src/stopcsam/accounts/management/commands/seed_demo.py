from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from stopcsam.accounts.demo_data import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Create demo sites and staff (demo mode only) and print their logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="where the demo is served"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_MODE:
            raise CommandError("seed_demo runs only in demo mode (STOPCSAM_DEMO=1).")
        staff = seed_demo()
        for seeder in settings.STOPCSAM_DEMO_SEEDERS:
            import_string(seeder)()
        self.stdout.write(f"\nDemo staff (password for every account: {DEMO_PASSWORD})\n")
        for member in staff:
            self.stdout.write(
                f"  {member.username:<15} {member.role.label:<20} site {member.site}"
                f"  languages {', '.join(member.languages)}"
            )
        self.stdout.write(
            "\nOne-time codes (TOTP): in another terminal run\n"
            "  .venv/bin/stopcsam totp <username>      e.g. .venv/bin/stopcsam totp therapist-de\n"
            f"Staff log in at {options['base_url']}/en/staff/login/ ; "
            "the coordinator also reaches /admin/.\n"
        )
