from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stopcsam.study.exceptions import ProtocolError
from stopcsam.study.services import protocol_load


class Command(BaseCommand):
    help = (
        "Load a protocol from a YAML or JSON file as a new version (active unless --inactive). "
        "--seed <64 hex digits> fixes the randomization seed, for end-to-end tests only: it is "
        "refused unless demo mode, DEBUG or the test clock is on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--inactive", action="store_true")
        parser.add_argument("--seed", help="test only: a known seed instead of a fresh one")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        seed: str | None = options["seed"]
        if seed is not None and not _test_deployment():
            raise CommandError(
                "--seed is for tests only: a known seed would make allocations predictable. "
                "It needs STOPCSAM_DEMO=1, DEBUG=1 or STOPCSAM_TEST_CLOCK=1."
            )
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
            version = protocol_load(definition=data, activate=not options["inactive"], seed=seed)
        except (OSError, ValueError, yaml.YAMLError, ProtocolError) as exc:
            raise CommandError(f"{path}: {exc}") from exc
        self.stdout.write(f"Loaded {version}; seed commitment {version.seed_commitment}")


def _test_deployment() -> bool:
    return bool(settings.DEMO_MODE or settings.DEBUG or settings.STOPCSAM_TEST_CLOCK)
