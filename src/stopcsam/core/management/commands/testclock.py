from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from stopcsam.core import clock

RELATIVE = re.compile(r"^\+(\d+)([dhm])$")


class Command(BaseCommand):
    help = (
        "Test clock (demo/debug mode with STOPCSAM_TEST_CLOCK=1 only): "
        "`testclock +3d`, `testclock 2026-12-01T17:00:00+00:00`, `testclock reset`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.STOPCSAM_TEST_CLOCK:
            raise CommandError("The test clock is off (STOPCSAM_TEST_CLOCK=1, demo mode only).")
        clock.set_offset(_offset(options["target"]))
        self.stdout.write(clock.now().isoformat())


def _offset(target: str) -> timedelta:
    if target == "reset":
        return timedelta(0)
    match = RELATIVE.match(target)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        current = clock.now() - timezone.now()
        step = {
            "d": timedelta(days=amount),
            "h": timedelta(hours=amount),
            "m": timedelta(minutes=amount),
        }[unit]
        return current + step
    try:
        moment = datetime.fromisoformat(target)
    except ValueError as exc:
        raise CommandError("Give +<n>d, +<n>h, +<n>m, an ISO time with offset, or reset.") from exc
    if moment.tzinfo is None:
        raise CommandError("Give the time with its UTC offset, e.g. 2026-12-01T17:00:00+00:00.")
    return moment - timezone.now()
