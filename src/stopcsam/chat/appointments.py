"""The appointment hooks: how chat learns about appointments without importing scheduling.

Each hook is a dotted path in settings (None: not wired). An appointment is a dict with
``appointment_ref``, ``participant_id``, ``therapist_id``, ``starts_at``, ``ends_at`` (aware
UTC datetimes), ``number`` (k), ``of`` (n) and ``language``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

Appointment = dict[str, Any]
REQUIRED_KEYS = frozenset(
    {"appointment_ref", "participant_id", "therapist_id", "starts_at", "ends_at"}
)


def _hook(name: str) -> Callable[..., Any] | None:
    path = getattr(settings, name, None)
    return import_string(path) if path else None


def appointment_fetch(*, appointment_ref: str) -> Appointment | None:
    source = _hook("STOPCSAM_APPOINTMENT_SOURCE")
    found = source(appointment_ref=appointment_ref) if source else None
    return found if found and found.keys() >= REQUIRED_KEYS else None


def appointments_list(
    *, since: datetime, participant_id: int | None = None, therapist_id: int | None = None
) -> list[Appointment]:
    source = _hook("STOPCSAM_APPOINTMENTS_FOR")
    if source is None:
        return []
    found = source(participant_id=participant_id, therapist_id=therapist_id, since=since)
    return [item for item in found if item.keys() >= REQUIRED_KEYS]


def notify_joined(*, appointment_ref: str, role: str) -> None:
    hook = _hook("STOPCSAM_APPOINTMENT_JOINED")
    if hook:
        hook(appointment_ref=appointment_ref, role=role)


def notify_attended(*, appointment_ref: str) -> None:
    hook = _hook("STOPCSAM_APPOINTMENT_ATTENDED")
    if hook:
        hook(appointment_ref=appointment_ref)
