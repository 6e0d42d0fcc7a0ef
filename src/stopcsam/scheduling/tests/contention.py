"""Many clients booking at once, each in its own thread and database connection.

Used by test_concurrency (PostgreSQL in-process; SQLite in a child process with a real file,
because SQLite's in-memory test database shares one cache across threads and locks by table)
and by bench/scheduling.py. Its ``main`` migrates a fresh SQLite file and prints JSON.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time as timer
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.db import connection, connections
from django.db.models import Q

from stopcsam.accounts.models import Participant, Role, Site, StaffUser
from stopcsam.scheduling import selectors, services
from stopcsam.scheduling.exceptions import SchedulingError
from stopcsam.scheduling.models import Appointment, Status, TherapistProfile, WeeklyAvailability


@dataclass
class RaceResult:
    attempts: int
    booked: int
    refused: int
    unexpected: list[str]
    live_at_slot: int
    overlapping_pairs: int
    seconds: float


def make_therapist(username: str = "race-therapist") -> StaffUser:
    site, _ = Site.objects.get_or_create(
        code="RC", defaults={"name": "Race", "time_zone": "Europe/Berlin", "languages": ["en"]}
    )
    staff = StaffUser.objects.create(
        username=username, role=Role.THERAPIST, site=site, languages=["en"]
    )
    TherapistProfile.objects.create(staff=staff, qualified=True, max_caseload=10_000)
    WeeklyAvailability.objects.bulk_create(
        WeeklyAvailability(therapist=staff, weekday=d, start_time=time(9), end_time=time(20))
        for d in range(7)
    )
    return staff


def make_participants(count: int) -> list[Participant]:
    # Codename hashing is beside the point here; these rows only need to exist.
    return [
        Participant.objects.create(
            codename_lookup=secrets.token_hex(16), codename_hash="-", language="en"
        )
        for _ in range(count)
    ]


def weekly(first: datetime, count: int = 4, offset_weeks: int = 0) -> list[datetime]:
    from zoneinfo import ZoneInfo

    from stopcsam.scheduling.slots import same_local_time_weeks_later

    tz = ZoneInfo("Europe/Berlin")
    return [same_local_time_weeks_later(first, w + offset_weeks, tz) for w in range(count)]


def connection_budget() -> int:
    """At most this many threads hold a database connection at once. PostgreSQL's
    max_connections (100 by default) is shared with everyone else on the server, as a web
    server's pool would be; SQLite connections are only file handles."""
    return 40 if connection.vendor == "postgresql" else 1000


def race(therapist: StaffUser, plans: list[tuple[Participant, list[datetime]]]) -> RaceResult:
    """Release every booking at the same moment; count what the database holds afterwards."""
    barrier = threading.Barrier(len(plans))
    pool = threading.BoundedSemaphore(connection_budget())
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(participant: Participant, starts: list[datetime]) -> None:
        barrier.wait(timeout=60)
        with pool:  # the connection opens and closes inside the pool's budget
            try:
                services.course_book(
                    participant=participant, therapist_id=therapist.pk, starts=starts
                )
                outcome = "booked"
            except SchedulingError:
                outcome = "refused"
            except Exception as exc:  # counted: anything but a clean refusal is a failure
                outcome = f"{type(exc).__name__}: {exc}"[:200]
            finally:
                connections.close_all()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt, args=plan) for plan in plans]
    began = timer.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = timer.perf_counter() - began
    first_slot = min(s for _p, starts in plans for s in starts)
    return RaceResult(
        attempts=len(plans),
        booked=outcomes.count("booked"),
        refused=outcomes.count("refused"),
        unexpected=[o for o in outcomes if o not in ("booked", "refused")],
        live_at_slot=_live(therapist).filter(start=first_slot).count(),
        overlapping_pairs=overlapping_pairs(therapist),
        seconds=seconds,
    )


def _live(therapist: StaffUser) -> Any:
    return Appointment.objects.filter(therapist=therapist).exclude(status=Status.CANCELLED)


def overlapping_pairs(therapist: StaffUser | None = None) -> int:
    """Live appointments of one therapist that overlap in time (must always be zero)."""
    live = Appointment.objects.exclude(status=Status.CANCELLED)
    if therapist is not None:
        live = live.filter(therapist=therapist)
    pairs = 0
    for appointment in live.iterator():
        pairs += (
            live.filter(therapist_id=appointment.therapist_id)
            .filter(Q(start__lt=appointment.end) & Q(end__gt=appointment.start))
            .exclude(pk=appointment.pk)
            .count()
        )
    return pairs // 2


def first_free_slot(therapist: StaffUser) -> datetime:
    starts = selectors.therapist_free_starts(
        therapist=therapist,
        start=selectors.booking_window()[0] + timedelta(days=1),
        end=selectors.booking_window()[1],
    )
    return starts[0]


def one_slot_race(attempts: int = 200) -> RaceResult:
    therapist = make_therapist()
    first = first_free_slot(therapist)
    people = make_participants(attempts)
    return race(therapist, [(p, weekly(first)) for p in people])


def overlapping_courses_race(attempts: int = 40) -> RaceResult:
    """Courses that start in different weeks but share later weeks: at most one may win
    each shared week, so the therapist never holds two overlapping sessions."""
    therapist = make_therapist("race-therapist-2")
    first = first_free_slot(therapist)
    people = make_participants(attempts)
    plans = [(p, weekly(first, offset_weeks=i % 4)) for i, p in enumerate(people)]
    return race(therapist, plans)


def main() -> None:
    """Child-process entry (after django.setup()): migrate the fresh, file-backed database,
    race, print JSON."""
    from django.conf import settings
    from django.core.management import call_command

    # The race is about the calendar, not the study: everyone may book four sessions.
    settings.STOPCSAM_MAY_BOOK = None
    settings.STOPCSAM_COURSE_LENGTH = None
    call_command("migrate", verbosity=0)
    result = {
        "vendor": connection.vendor,
        "one_slot": asdict(one_slot_race(int(sys.argv[1]) if len(sys.argv) > 1 else 200)),
        "overlapping": asdict(overlapping_courses_race()),
    }
    sys.stdout.write(json.dumps(result) + "\n")
