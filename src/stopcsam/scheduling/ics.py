"""Neutral calendar files. Title "Appointment"; no therapist, service, link or description.

Times carry the reader's TZID with a matching VTIMEZONE, so calendar apps show the local time
the participant chose, and every instant round-trips to the same UTC value.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from stopcsam.core import clock
from stopcsam.scheduling.models import Appointment, Status

TITLE = "Appointment"
PRODID = "-//Calendar//Appointment//EN"


def calendar_bytes(appointments: Iterable[Appointment], tz_name: str) -> bytes:
    tz = ZoneInfo(tz_name)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    stamp = clock.now()
    for appointment in appointments:
        calendar.add_component(_event(appointment, tz, stamp))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def _event(appointment: Appointment, tz: ZoneInfo, stamp: datetime) -> Event:
    event = Event()
    # The UID names no host: it only has to be stable, so a re-import updates the entry.
    event.add("uid", f"{appointment.ref}@appointment")
    event.add("dtstamp", stamp)
    event.add("summary", TITLE)
    event.add("dtstart", appointment.start.astimezone(tz))
    event.add("dtend", appointment.end.astimezone(tz))
    if appointment.status == Status.CANCELLED:
        event.add("status", "CANCELLED")
    else:
        event.add("status", "CONFIRMED")
    return event
