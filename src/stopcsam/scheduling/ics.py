"""Neutral calendar files. Title "Appointment"; no therapist, service, link or description.

Times carry the reader's TZID with a matching VTIMEZONE, so calendar apps show the local time
the participant chose, and every instant round-trips to the same UTC value.

Each event keeps its UID for life, and its SEQUENCE counts the session's moves and its
cancellation (from its history): RFC 5545 lets a calendar app that imported an earlier file
replace the event only when SEQUENCE has grown.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count
from django.utils.crypto import salted_hmac
from icalendar import Calendar, Event

from stopcsam.core import clock
from stopcsam.scheduling.models import Appointment, AppointmentChange, ChangeKind, Status

TITLE = "Appointment"
PRODID = "-//Calendar//Appointment//EN"


def calendar_bytes(appointments: Iterable[Appointment], tz_name: str, *, audience: str) -> bytes:
    """``audience``: "participant" or "staff"; each gets its own event ids (``_uid``)."""
    tz = ZoneInfo(tz_name)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    stamp = clock.now()
    appointments = list(appointments)
    sequences = _sequences(appointments)
    for appointment in appointments:
        event = _event(appointment, tz, stamp, audience)
        event.add("sequence", sequences.get(appointment.pk, 0))
        calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()


# The changes a calendar app must see: a new time, or the session called off. A hand-over
# changes nothing in the event; joins and outcomes leave it as it was.
SEQUENCED = (ChangeKind.RESCHEDULED, ChangeKind.CANCELLED)


def _sequences(appointments: list[Appointment]) -> dict[int, int]:
    """Each appointment's SEQUENCE, by pk: how often it was moved or cancelled (one query)."""
    rows = (
        AppointmentChange.objects.filter(
            appointment__in=[a.pk for a in appointments], kind__in=SEQUENCED
        )
        .values_list("appointment_id")
        .annotate(n=Count("id"))
    )
    return dict(rows)


def _uid(appointment: Appointment, audience: str) -> str:
    """Stable, so that a re-import updates the entry, and different for the participant and
    the therapist: a calendar provider that holds both files (the participant's import and
    the therapist's feed) cannot match them and link the participant to a named therapist.
    It names no host. Keyed by STOPCSAM_LOOKUP_KEY, which is kept for the life of the service
    (codenames depend on it), not SECRET_KEY: a rotated SECRET_KEY changed every id, and a
    re-imported file then added each appointment a second time."""
    digest = salted_hmac(
        "stopcsam.scheduling.ics",
        f"{audience}:{appointment.ref}",
        secret=settings.STOPCSAM_LOOKUP_KEY,
        algorithm="sha256",
    )
    return f"{digest.hexdigest()[:32]}@appointment"


def _event(appointment: Appointment, tz: ZoneInfo, stamp: datetime, audience: str) -> Event:
    event = Event()
    event.add("uid", _uid(appointment, audience))
    event.add("dtstamp", stamp)
    event.add("summary", TITLE)
    event.add("dtstart", appointment.start.astimezone(tz))
    event.add("dtend", appointment.end.astimezone(tz))
    if appointment.status == Status.CANCELLED:
        event.add("status", "CANCELLED")
    else:
        event.add("status", "CONFIRMED")
    return event
