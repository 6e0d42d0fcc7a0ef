from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Set up and serve the demo: migrate, seed demo data, print logins, serve."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_MODE:
            raise CommandError("Run it as `stopcsam demo`, which turns demo mode on.")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo", base_url=f"http://{options['host']}:{options['port']}")
        self.stdout.write(
            f"\nServing on http://{options['host']}:{options['port']}/ (Ctrl+C stops it)\n"
        )
        call_command("serve", host=options["host"], port=options["port"], processes=1)
