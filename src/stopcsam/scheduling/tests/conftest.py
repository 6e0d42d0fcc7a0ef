"""Scheduling fixtures: a frozen clock and therapists with weekly hours."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time
from typing import Any

import pytest

from stopcsam.accounts.models import StaffUser
from stopcsam.core import clock
from stopcsam.scheduling.models import TherapistProfile, WeeklyAvailability


class FrozenClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at


@pytest.fixture(autouse=True)
def study_hooks_unset(settings: Any) -> None:
    """Scheduling is tested on its own: everyone may book, a course has four sessions.
    Tests of the hooks themselves override these settings again."""
    settings.STOPCSAM_MAY_BOOK = None
    settings.STOPCSAM_COURSE_LENGTH = None


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[FrozenClock]:
    # Monday 2 March 2026, 08:00 UTC; Europe's clocks go forward on Sunday 29 March.
    fake = FrozenClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    monkeypatch.setattr(clock, "now", fake)
    yield fake


Windows = list[tuple[int, time, time]]


def make_bookable(
    staff: StaffUser, windows: Windows, *, tz: str = "Europe/Berlin", **limits: int
) -> TherapistProfile:
    profile, _ = TherapistProfile.objects.update_or_create(
        staff=staff, defaults={"qualified": True, "time_zone": tz, **limits}
    )
    WeeklyAvailability.objects.filter(therapist=staff).delete()
    for weekday, start, end in windows:
        WeeklyAvailability.objects.create(
            therapist=staff, weekday=weekday, start_time=start, end_time=end
        )
    return profile


@pytest.fixture
def bookable() -> Callable[..., TherapistProfile]:
    return make_bookable


TUESDAY_EVENING: Windows = [(1, time(17), time(20))]


def book_course(participant: Any, first: datetime) -> Any:
    """Book the course the scheduler proposes from ``first``, at the proposed times."""
    from stopcsam.scheduling import selectors, services

    proposal = selectors.course_proposal(participant=participant, first=first)
    assert proposal is not None
    return services.course_book(
        participant=participant,
        therapist_id=proposal.therapist.pk,
        starts=[s.start for s in proposal.sessions],
    )
