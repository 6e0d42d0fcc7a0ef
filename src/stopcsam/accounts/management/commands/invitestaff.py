from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from django.utils import translation

from stopcsam.accounts.models import Role, Site
from stopcsam.accounts.services import staff_invitation_create


class Command(BaseCommand):
    help = "Create a one-time invitation link for a new member of staff."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--site", required=True)
        parser.add_argument("--languages", default="en")
        parser.add_argument("--display-name", default="")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        site = Site.objects.filter(code=options["site"].upper()).first()
        if site is None:
            raise CommandError(f"No site with code {options['site']!r}.")
        languages = [c.strip() for c in options["languages"].split(",") if c.strip()]
        try:
            _invitation, token = staff_invitation_create(
                role=options["role"],
                site=site,
                languages=languages,
                display_name=options["display_name"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        with translation.override("en"):
            path = reverse("accounts:invitation_accept", args=[token])
        self.stdout.write(options["base_url"].rstrip("/") + path)
