from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stopcsam.accounts.models import Participant, StaffUser
from stopcsam.accounts.services import participant_create
from stopcsam.chat.demo import demo_appointment_add
from stopcsam.core import clock


class Command(BaseCommand):
    help = "Demo and tests only: book a chat appointment in the demo file; print it as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--therapist", required=True, help="username")
        parser.add_argument("--participant-id", type=int, help="default: a new participant")
        parser.add_argument("--language", default="en")
        parser.add_argument("--starts-in-minutes", type=int, default=0)
        parser.add_argument("--number", type=int, default=1)
        parser.add_argument("--of", type=int, default=4)

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.CHAT_DEMO_APPOINTMENTS:
            raise CommandError("Set CHAT_DEMO_APPOINTMENTS (demo or test mode only).")
        therapist = StaffUser.objects.filter(username=options["therapist"]).first()
        if therapist is None:
            raise CommandError("No such member of staff.")
        codename = ""
        if options["participant_id"]:
            participant = Participant.objects.get(pk=options["participant_id"])
        else:
            participant, codename = participant_create(language=options["language"])
        starts_at = clock.now() + timedelta(minutes=options["starts_in_minutes"])
        appointment = {
            "appointment_ref": f"demo-{uuid.uuid4().hex[:12]}",
            "participant_id": participant.pk,
            "therapist_id": therapist.pk,
            "starts_at": starts_at,
            "ends_at": starts_at + timedelta(seconds=settings.CHAT_SESSION_SECONDS),
            "number": options["number"],
            "of": options["of"],
            "language": participant.language,
        }
        demo_appointment_add(appointment)
        out = {k: v for k, v in appointment.items() if k not in ("starts_at", "ends_at")}
        self.stdout.write(json.dumps({**out, "codename": codename}))
