from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stopcsam.core.crypto import KEY_ID_PATTERN, new_key_spec


class Command(BaseCommand):
    help = "Print a new field-encryption key entry (id:base64key) to put first in the keyring."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key_id")

    def handle(self, *args: Any, **options: Any) -> None:
        if not KEY_ID_PATTERN.match(options["key_id"]):
            raise CommandError("A key id is 1 to 32 letters, digits, dashes or underscores.")
        self.stdout.write(new_key_spec(options["key_id"]))
