"""Booking a course: who is offered, the weekly plan across DST, the rules, atomicity."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings

from stopcsam.accounts.models import Participant
from stopcsam.core.models import AuditEvent
from stopcsam.scheduling import selectors, services
from stopcsam.scheduling.exceptions import (
    AlreadyHasCourseError,
    BookingNotAllowedError,
    ProposalInvalidError,
    SlotUnavailableError,
)
from stopcsam.scheduling.models import Appointment, AvailabilityException, Course, Status
from stopcsam.scheduling.tests.conftest import TUESDAY_EVENING, FrozenClock, book_course

BERLIN = ZoneInfo("Europe/Berlin")
FIRST = datetime(2026, 3, 17, 16, 0, tzinfo=UTC)  # Tuesday 17 March, 17:00 Berlin


def never_book(participant: Participant) -> bool:
    return False


def six_sessions(participant: Participant) -> int:
    return 6


def _book(participant: Participant, first: datetime = FIRST) -> Course:
    return book_course(participant, first)  # type: ignore[no-any-return]


@pytest.fixture
def ready(frozen: FrozenClock, therapist, bookable: Callable) -> None:  # type: ignore[no-untyped-def]
    bookable(therapist.user, TUESDAY_EVENING)


def test_it_books_four_weekly_sessions_at_the_same_local_time_across_dst(
    ready: None, participant, therapist
) -> None:  # type: ignore[no-untyped-def]
    course = _book(participant.participant)
    starts = [a.start for a in course.appointments.order_by("start")]
    assert len(starts) == 4
    assert {s.astimezone(BERLIN).strftime("%a %H:%M") for s in starts} == {"Tue 17:00"}
    # Before 29 March Berlin is UTC+1, after it UTC+2: the UTC instants shift by an hour.
    assert [s.hour for s in starts] == [16, 16, 15, 15]
    assert {a.therapist_id for a in course.appointments.all()} == {therapist.user.pk}
    assert AuditEvent.objects.filter(action="scheduling.course_booked").count() == 1


def test_a_participant_in_another_time_zone_gets_the_therapists_wall_clock(
    ready: None, participant
) -> None:  # type: ignore[no-untyped-def]
    course = _book(participant.participant)
    new_york = [
        a.start.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M")
        for a in course.appointments.order_by("start")
    ]
    # The US changes on 8 March, Europe on 29 March: for those weeks the gap is 5 h, not 6.
    assert new_york == ["12:00", "12:00", "11:00", "11:00"]


def test_only_qualified_active_therapists_who_speak_the_language_are_offered(
    frozen: FrozenClock, participant, other_participant, therapist, therapist_es, bookable
) -> None:  # type: ignore[no-untyped-def]
    bookable(therapist.user, TUESDAY_EVENING)
    profile_es = bookable(therapist_es.user, [(3, time(9), time(10))], tz="Europe/Madrid")
    assert selectors.free_starts(language="de")  # the German participant sees Anna
    en = selectors.free_starts(language="en")
    assert {t for ids in en.values() for t in ids} == {therapist.user.pk, therapist_es.user.pk}
    profile_es.qualified = False
    profile_es.save()
    therapist.user.is_active = False
    therapist.user.save()
    assert selectors.free_starts(language="en") == {}
    assert selectors.free_starts(language="cs") == {}


def test_minimum_notice_and_horizon_bound_the_offer(ready: None) -> None:
    offered = list(selectors.free_starts(language="en"))
    now = datetime(2026, 3, 2, 8, tzinfo=UTC)
    assert min(offered) >= now + timedelta(hours=12)
    assert max(offered) <= now + timedelta(days=42)
    assert min(offered) == datetime(2026, 3, 3, 16, tzinfo=UTC)
    assert selectors.free_start_times(language="en") == offered  # what the page lists


def test_a_first_slot_inside_the_notice_is_refused(
    ready: None, frozen: FrozenClock, participant
) -> None:  # type: ignore[no-untyped-def]
    frozen.set(FIRST - timedelta(hours=11))
    assert selectors.course_proposal(participant=participant.participant, first=FIRST) is None
    with pytest.raises(SlotUnavailableError):
        _book_raw(participant.participant, FIRST)


def _book_raw(participant: Participant, first: datetime) -> Course:
    from stopcsam.accounts.models import StaffUser

    therapist = StaffUser.objects.get(username="anna")
    starts = [
        datetime.combine(
            (first.astimezone(BERLIN) + timedelta(weeks=w)).date(), time(17), tzinfo=BERLIN
        ).astimezone(UTC)
        for w in range(4)
    ]
    return services.course_book(participant=participant, therapist_id=therapist.pk, starts=starts)


def test_a_taken_week_is_moved_within_two_days_and_shown_as_moved(
    frozen: FrozenClock, participant, other_participant, therapist, bookable
) -> None:  # type: ignore[no-untyped-def]
    bookable(therapist.user, [(1, time(17), time(18)), (3, time(17), time(18))])
    # Someone else holds Tuesday 24 March at 17:00.
    other = _book(other_participant.participant, datetime(2026, 3, 24, 16, tzinfo=UTC))
    assert other.appointments.count() == 4
    proposal = selectors.course_proposal(participant=participant.participant, first=FIRST)
    assert proposal is not None
    assert [s.moved for s in proposal.sessions] == [False, True, True, True]
    assert proposal.sessions[1].start.astimezone(BERLIN).strftime("%a %d %H:%M") == "Thu 26 17:00"


def test_the_whole_course_is_booked_or_nothing(ready: None, participant, other_participant) -> None:  # type: ignore[no-untyped-def]
    proposal = selectors.course_proposal(participant=participant.participant, first=FIRST)
    assert proposal is not None
    starts = [s.start for s in proposal.sessions]
    # Meanwhile someone takes the third week.
    _book(other_participant.participant, starts[2])
    with pytest.raises(SlotUnavailableError):
        services.course_book(
            participant=participant.participant, therapist_id=proposal.therapist.pk, starts=starts
        )
    assert not Course.objects.filter(participant=participant.participant).exists()
    assert not Appointment.objects.filter(participant=participant.participant).exists()


def test_a_plan_with_wrong_spacing_or_length_is_refused(
    ready: None, participant, therapist
) -> None:  # type: ignore[no-untyped-def]
    starts = [FIRST + timedelta(weeks=w) for w in range(3)]
    with pytest.raises(ProposalInvalidError):
        services.course_book(
            participant=participant.participant, therapist_id=therapist.user.pk, starts=starts
        )
    spaced = [
        FIRST,
        FIRST + timedelta(days=3),
        FIRST + timedelta(weeks=2),
        FIRST + timedelta(weeks=3),
    ]
    with pytest.raises(ProposalInvalidError):
        services.course_book(
            participant=participant.participant, therapist_id=therapist.user.pk, starts=spaced
        )


def test_one_open_course_per_participant(ready: None, participant) -> None:  # type: ignore[no-untyped-def]
    _book(participant.participant)
    with pytest.raises(AlreadyHasCourseError):
        _book(participant.participant, FIRST + timedelta(hours=1))


@override_settings(STOPCSAM_MAY_BOOK="stopcsam.scheduling.tests.test_booking.never_book")
def test_the_study_hook_can_refuse_booking(ready: None, participant) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BookingNotAllowedError):
        _book_raw(participant.participant, FIRST)


@override_settings(STOPCSAM_COURSE_LENGTH="stopcsam.scheduling.tests.test_booking.six_sessions")
def test_the_course_length_comes_from_the_study_hook(ready: None, participant) -> None:  # type: ignore[no-untyped-def]
    course = _book(participant.participant)
    assert course.appointments.count() == 6


def test_a_holiday_removes_the_slots_and_extra_hours_add_some(ready: None, therapist) -> None:  # type: ignore[no-untyped-def]
    services.availability_exception_add(
        therapist=therapist.user,
        kind="holiday",
        start=datetime(2026, 3, 10, tzinfo=UTC),
        end=datetime(2026, 3, 11, tzinfo=UTC),
    )
    services.availability_exception_add(
        therapist=therapist.user,
        kind="extra",
        start=datetime(2026, 3, 12, 8, tzinfo=UTC),
        end=datetime(2026, 3, 12, 9, tzinfo=UTC),
    )
    offered = selectors.free_starts(language="en")
    assert not [s for s in offered if s.date().isoformat() == "2026-03-10"]
    assert datetime(2026, 3, 12, 8, tzinfo=UTC) in offered
    assert AvailabilityException.objects.count() == 2


def test_day_limit_and_caseload_close_the_offer(
    frozen: FrozenClock, participant, other_participant, therapist, bookable
) -> None:  # type: ignore[no-untyped-def]
    bookable(therapist.user, TUESDAY_EVENING, max_per_day=1, max_caseload=1)
    _book(other_participant.participant)
    offered = selectors.free_starts(language="en")
    assert offered == {}  # caseload full
    profile = selectors.profile_for(therapist.user)
    profile.max_caseload = 5
    profile.save()
    offered = selectors.free_starts(language="en")
    assert offered and all(s.astimezone(BERLIN).date().day not in (17, 24, 31) for s in offered)
    assert not any(
        s.astimezone(BERLIN).month == 4 and s.astimezone(BERLIN).day == 7 for s in offered
    )


def test_status_stays_booked_until_an_outcome(ready: None, participant) -> None:  # type: ignore[no-untyped-def]
    course = _book(participant.participant)
    assert set(course.appointments.values_list("status", flat=True)) == {Status.BOOKED}


def test_the_garbage_collector_is_back_on_after_a_slot_computation(
    ready: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    selectors.free_start_times(language="en")
    assert gc.isenabled()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError

    monkeypatch.setattr(selectors, "calendars", broken)
    with pytest.raises(RuntimeError):
        selectors.free_start_times(language="en")
    assert gc.isenabled()
