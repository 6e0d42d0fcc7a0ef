"""The demo protocol, loaded (once) when the demo is seeded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from stopcsam.study.models import ProtocolVersion
from stopcsam.study.services import protocol_load

DEMO_PROTOCOL = Path(__file__).resolve().parent / "protocols" / "demo.yaml"


def demo_definition() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DEMO_PROTOCOL.read_text(encoding="utf-8"))
    return loaded


def seed_study_demo() -> ProtocolVersion:
    existing = ProtocolVersion.objects.filter(is_active=True).first()
    if existing is not None:
        return existing
    return protocol_load(definition=demo_definition(), actor="system")
