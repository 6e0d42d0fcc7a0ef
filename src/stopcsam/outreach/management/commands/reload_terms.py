from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from stopcsam.outreach.matching import TermListError
from stopcsam.outreach.services import term_lists_reload


class Command(BaseCommand):
    help = "Check the deterrence term lists and make every running process load them."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            stamp = term_lists_reload(actor="operator")
        except TermListError as exc:
            raise CommandError(f"Nothing changed: {exc}") from exc
        self.stdout.write(
            f"Term lists version {stamp.version}: {stamp.term_count} terms. "
            "Running processes switch within a second."
        )
