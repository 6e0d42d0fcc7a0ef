from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from stopcsam.chat.services import sessions_shred_expired


class Command(BaseCommand):
    help = (
        "Delete transcripts, notes and escalations of participants whose last study time "
        "point (their last chat session or the last window of their study schedule, whichever "
        "is later) is more than CHAT_RETENTION_DAYS ago. The background worker does it every "
        "minute; this runs it by hand."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        count = sessions_shred_expired(dry_run=options["dry_run"])
        verb = "would shred" if options["dry_run"] else "shredded"
        self.stdout.write(f"{verb} {count} session(s)")
