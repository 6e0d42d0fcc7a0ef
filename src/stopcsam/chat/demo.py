"""Demo and end-to-end appointments: a JSON file in VAR_DIR stands in for scheduling.

Used only when CHAT_DEMO_APPOINTMENTS is set, which a system check refuses outside demo mode
and CHAT_TEST_MODE. ``stopcsam chat_demo_session`` writes an appointment into the file.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings


def _file() -> Path:
    return Path(settings.VAR_DIR) / "chat-demo-appointments.json"


def _load() -> dict[str, dict[str, Any]]:
    try:
        raw = json.loads(_file().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    for item in raw.values():
        item["starts_at"] = datetime.fromisoformat(item["starts_at"])
        item["ends_at"] = datetime.fromisoformat(item["ends_at"])
    return dict(raw)


def demo_appointment_add(appointment: dict[str, Any]) -> None:
    stored = {
        ref: {
            **item,
            "starts_at": item["starts_at"].isoformat(),
            "ends_at": item["ends_at"].isoformat(),
        }
        for ref, item in {**_load(), appointment["appointment_ref"]: appointment}.items()
    }
    _file().write_text(json.dumps(stored), encoding="utf-8")


def appointment_source(*, appointment_ref: str) -> dict[str, Any] | None:
    return _load().get(appointment_ref)


def appointments_for(
    *, participant_id: int | None = None, therapist_id: int | None = None, since: datetime
) -> list[dict[str, Any]]:
    return [
        item
        for item in _load().values()
        if item["ends_at"] >= since
        and participant_id in (None, item["participant_id"])
        and therapist_id in (None, item["therapist_id"])
    ]
