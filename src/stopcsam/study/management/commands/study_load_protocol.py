from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stopcsam.study.exceptions import ProtocolError
from stopcsam.study.services import protocol_load


class Command(BaseCommand):
    help = "Load a protocol from a YAML or JSON file as a new version (active unless --inactive)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--inactive", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
            version = protocol_load(definition=data, activate=not options["inactive"])
        except (OSError, ValueError, yaml.YAMLError, ProtocolError) as exc:
            raise CommandError(f"{path}: {exc}") from exc
        self.stdout.write(f"Loaded {version}; seed commitment {version.seed_commitment}")
