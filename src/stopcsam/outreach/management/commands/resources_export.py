from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from stopcsam.outreach.directory_io import write_csv, write_json
from stopcsam.outreach.models import Resource


class Command(BaseCommand):
    help = "Print the resource directory as JSON or CSV (the import format)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["json", "csv"], default="json")
        parser.add_argument("--all", action="store_true", help="include hidden services")

    def handle(self, *args: Any, **options: Any) -> None:
        found = Resource.objects.all() if options["all"] else Resource.objects.filter(active=True)
        rows = list(found.order_by("country", "name").prefetch_related("texts"))
        self.stdout.write(
            write_csv(rows) if options["format"] == "csv" else write_json(rows), ending=""
        )
