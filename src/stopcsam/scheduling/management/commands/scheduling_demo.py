from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from stopcsam.scheduling.demo import seed_scheduling_demo


class Command(BaseCommand):
    help = "Give the demo therapists weekly hours and training (demo mode only)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_MODE:
            raise CommandError("scheduling_demo runs only in demo mode (STOPCSAM_DEMO=1).")
        for username in seed_scheduling_demo():
            self.stdout.write(f"  {username}: weekly hours set, marked as trained")
