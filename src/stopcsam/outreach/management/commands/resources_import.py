from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from stopcsam.outreach.directory_io import read_resources
from stopcsam.outreach.exceptions import ImportValidationError
from stopcsam.outreach.services import resources_import


class Command(BaseCommand):
    help = "Import the resource directory from a JSON or CSV file (checked before any change)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--replace", action="store_true", help="hide services that the file does not list"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            resources = read_resources(path.name, path.read_text(encoding="utf-8-sig"))
        except OSError as exc:
            raise CommandError(f"{path}: cannot be read ({exc.strerror}).") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path}: not UTF-8 text.") from exc
        except ImportValidationError as exc:
            raise CommandError(
                f"{path}: nothing imported, {len(exc.problems)} problem(s):\n  "
                + "\n  ".join(exc.problems)
            ) from exc
        count = resources_import(resources=resources, replace=options["replace"])
        self.stdout.write(f"Imported {count} services.")
