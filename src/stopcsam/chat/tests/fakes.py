"""Fake appointment hooks: what scheduling will provide, kept in memory for the tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

APPOINTMENTS: dict[str, dict[str, Any]] = {}
JOINED: list[tuple[str, str]] = []
ATTENDED: list[str] = []
NOT_HELD: list[str] = []
STUDY_IDS: dict[int, str] = {}


def reset() -> None:
    APPOINTMENTS.clear()
    JOINED.clear()
    ATTENDED.clear()
    NOT_HELD.clear()
    STUDY_IDS.clear()


def appointment_source(*, appointment_ref: str) -> dict[str, Any] | None:
    return APPOINTMENTS.get(appointment_ref)


def appointments_for(
    *, participant_id: int | None = None, therapist_id: int | None = None, since: datetime
) -> list[dict[str, Any]]:
    return [
        item
        for item in APPOINTMENTS.values()
        if item["ends_at"] >= since
        and (participant_id is None or item["participant_id"] == participant_id)
        and (therapist_id is None or item["therapist_id"] == therapist_id)
    ]


def joined(*, appointment_ref: str, role: str) -> None:
    JOINED.append((appointment_ref, role))


def attended(*, appointment_ref: str) -> None:
    ATTENDED.append(appointment_ref)


def not_held(*, appointment_ref: str) -> None:
    NOT_HELD.append(appointment_ref)


def study_id(participant_id: int) -> str:
    return STUDY_IDS.get(participant_id, f"S-{participant_id:04d}")
