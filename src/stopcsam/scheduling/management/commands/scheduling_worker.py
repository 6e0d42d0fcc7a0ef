from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from stopcsam.scheduling.jobs import build_consumer


class Command(BaseCommand):
    help = (
        "Run the background jobs (no-shows, reminders, the chat's forced ends and retention) "
        "in this process, for the scaled-out setup (STOPCSAM_EXTERNAL_WORKERS=1, REDIS_URL "
        "set). Stops on SIGTERM/SIGINT."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workers", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        build_consumer(workers=options["workers"]).run()
