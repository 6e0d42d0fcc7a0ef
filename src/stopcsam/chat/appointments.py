"""The appointment hooks: how chat learns about appointments without importing scheduling.

Each hook is a dotted path in settings (None: not wired). An appointment is a dict with
``appointment_ref``, ``participant_id``, ``therapist_id``, ``starts_at``, ``ends_at`` (aware
UTC datetimes), ``number`` (k), ``of`` (n), ``language`` and ``missed`` (True once the source
marked it a no-show: nobody is let in then). A wired source answers None for an appointment it
does not know: scheduling's way of saying it was cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.utils.module_loading import import_string

Appointment = dict[str, Any]
REQUIRED_KEYS = frozenset(
    {"appointment_ref", "participant_id", "therapist_id", "starts_at", "ends_at"}
)


def _hook(name: str) -> Callable[..., Any] | None:
    path = getattr(settings, name, None)
    return import_string(path) if path else None


class Lookup(NamedTuple):
    appointment: Appointment | None  # as the source gives it, when complete
    gone: bool  # the source is wired and does not know it (cancelled); False when not wired


def appointment_lookup(*, appointment_ref: str) -> Lookup:
    source = _hook("STOPCSAM_APPOINTMENT_SOURCE")
    if source is None:
        return Lookup(None, gone=False)
    found = source(appointment_ref=appointment_ref)
    if not found:
        return Lookup(None, gone=True)
    # An incomplete answer is a fault of the source, not a cancellation.
    return Lookup(found if found.keys() >= REQUIRED_KEYS else None, gone=False)


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


def notify_not_held(*, appointment_ref: str) -> None:
    """The participant came but was never let in: the session did not take place."""
    hook = _hook("STOPCSAM_APPOINTMENT_NOT_HELD")
    if hook:
        hook(appointment_ref=appointment_ref)
