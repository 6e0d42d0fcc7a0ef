"""Course dose, week limits across zones and withdrawn participants (a logic review, 2026-12-01)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

import pytest

from stopcsam.scheduling import selectors, services
from stopcsam.scheduling.exceptions import BookingNotAllowedError
from stopcsam.scheduling.models import Appointment, Course, Status
from stopcsam.scheduling.services import Actor
from stopcsam.scheduling.tests.conftest import FrozenClock, book_course

FIRST = datetime(2026, 3, 17, 16, 0, tzinfo=UTC)  # Tuesday 17 March, 17:00 Berlin
WINDOWS = [(1, time(17), time(20)), (3, time(17), time(20))]


@pytest.fixture
def ready(frozen: FrozenClock, therapist, bookable: Callable) -> None:  # type: ignore[no-untyped-def]
    bookable(therapist.user, WINDOWS, max_per_week=20, max_per_day=6)


def _attend_all(course: Course, frozen: FrozenClock) -> None:
    for appointment in course.appointments.order_by("start"):
        frozen.set(appointment.start + timedelta(minutes=1))
        services.appointment_mark_joined(appointment_ref=appointment.ref, role="participant")
        services.appointment_mark_attended(appointment_ref=appointment.ref)


def test_a_participant_who_attended_the_whole_course_cannot_book_a_second_one(
    ready: None, participant, frozen: FrozenClock
) -> None:  # type: ignore[no-untyped-def]
    """The protocol's course has four sessions. Once all four are attended the course ends
    (no booked session left), open_course() is None, and course_book() happily books a new
    full course of four: eight chat sessions for one participant of the chat arm."""
    me = participant.participant
    course = book_course(me, FIRST)
    _attend_all(course, frozen)
    course.refresh_from_db()
    assert course.ended_at is not None
    frozen.set(FIRST + timedelta(weeks=4))
    again = datetime(2026, 4, 21, 15, 0, tzinfo=UTC)  # Tuesday 17:00 Berlin (summer time)
    assert selectors.course_proposal(participant=me, first=again) is None
    with pytest.raises(BookingNotAllowedError):
        services.course_book(
            participant=me,
            therapist_id=course.therapist_id,
            starts=[again + timedelta(weeks=k) for k in range(4)],
        )
    held = Appointment.objects.filter(participant=me).exclude(status=Status.CANCELLED).count()
    assert held == 4, f"{held} sessions for a four-session protocol"


def test_after_two_attended_and_the_rest_cancelled_only_the_remainder_is_offered(
    ready: None, participant, frozen: FrozenClock
) -> None:  # type: ignore[no-untyped-def]
    """Cancelling "this and every later session" ends the course; booking again must give
    the sessions still owed (2), not a fresh course of four (6 in all)."""
    me = participant.participant
    course = book_course(me, FIRST)
    sessions = list(course.appointments.order_by("start"))
    for appointment in sessions[:2]:
        frozen.set(appointment.start + timedelta(minutes=1))
        services.appointment_mark_joined(appointment_ref=appointment.ref, role="participant")
        services.appointment_mark_attended(appointment_ref=appointment.ref)
    frozen.set(sessions[1].start + timedelta(days=1))
    services.appointment_cancel(appointment=sessions[2], actor=Actor.participant(), rest=True)
    course.refresh_from_db()
    assert course.ended_at is not None
    proposal = selectors.course_proposal(
        participant=me, first=datetime(2026, 4, 14, 15, 0, tzinfo=UTC)
    )
    assert proposal is not None
    assert len(proposal.sessions) == 2, f"{len(proposal.sessions)} more sessions proposed"


def withdrawn_from_study(participant: object) -> bool:
    return False


def test_no_booster_for_a_participant_who_stopped_taking_part(
    ready: None, participant, therapist, frozen: FrozenClock, settings: object
) -> None:  # type: ignore[no-untyped-def]
    """ "Stop taking part" cancels every session to come and ends the course; the therapist
    can still add a booster, which books a new session for them and reopens the course
    (with a reminder notice to someone who withdrew)."""
    from stopcsam.core.signals import participant_withdrawn

    me = participant.participant
    course = book_course(me, FIRST)
    participant_withdrawn.send(sender=None, participant_id=me.pk)
    settings.STOPCSAM_MAY_BOOK = f"{__name__}.withdrawn_from_study"  # type: ignore[attr-defined]
    course.refresh_from_db()
    assert course.ended_at is not None
    with pytest.raises(BookingNotAllowedError):
        services.course_add_booster(
            course=course,
            start=datetime(2026, 3, 19, 16, 0, tzinfo=UTC),
            actor=Actor.of_staff(therapist.user),
        )
    course.refresh_from_db()
    assert course.ended_at is not None
    assert not Appointment.objects.filter(participant=me, status=Status.BOOKED).exists()


# --- a therapist west of UTC: the week limit on a Sunday evening -----------------------------

SAO_PAULO_WINDOWS = [(0, time(10), time(11)), (1, time(10), time(11)), (6, time(21), time(22))]


def test_the_week_limit_holds_for_a_sunday_evening_slot_west_of_utc(
    frozen: FrozenClock, participant, other_participant, therapist, bookable: Callable
) -> None:  # type: ignore[no-untyped-def]
    """A therapist in America/Sao_Paulo (UTC-3) allows 2 sessions a week. Their local week
    9-15 March already holds Monday 10:00 and a booster on Tuesday 10:00. Sunday 15 March
    21:00 there is Monday 16 March 00:00 UTC: _whole_weeks() widens by the *UTC* weekday
    (Monday: one day back), so the calendar loads nothing before Saturday evening local,
    counts 0 sessions in that local week, and books a third one."""
    from stopcsam.accounts.services import participant_create

    bookable(therapist.user, SAO_PAULO_WINDOWS, tz="America/Sao_Paulo", max_per_week=2)
    monday = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # Mon 10:00 Sao Paulo
    course_a = book_course(participant.participant, monday)
    services.course_add_booster(
        course=course_a,
        start=datetime(2026, 3, 10, 13, 0, tzinfo=UTC),  # Tue 10:00 Sao Paulo
        actor=Actor.of_staff(therapist.user),
    )
    sunday_evening = datetime(2026, 3, 16, 0, 0, tzinfo=UTC)  # Sun 15 March 21:00 Sao Paulo
    third, _codename = participant_create(language="en")
    assert selectors.course_proposal(participant=third, first=sunday_evening) is None
    from stopcsam.scheduling.exceptions import SlotUnavailableError

    with pytest.raises(SlotUnavailableError):
        services.course_book(
            participant=third,
            therapist_id=therapist.user.pk,
            starts=[sunday_evening + timedelta(weeks=k) for k in range(4)],
        )
    local_week = [
        a
        for a in Appointment.objects.exclude(status=Status.CANCELLED)
        if datetime(2026, 3, 9, 3, 0, tzinfo=UTC)
        <= a.start
        < datetime(2026, 3, 16, 3, 0, tzinfo=UTC)
    ]
    assert len(local_week) <= 2


# --- a "stop" from another tab while the course is being confirmed ---------------------------


@pytest.mark.django_db(transaction=True)
def test_a_course_confirmed_while_the_participant_stops_is_not_booked(
    ready: None, participant, settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """course_book() asks the study whether the participant may book *before* its
    transaction and lock. A "stop" committed in between (another tab) cancels nothing (no
    course yet) and the course is then booked: four sessions, reminders and a caseload place
    for someone who withdrew. Re-checking under the lock closes the gap."""
    me = participant.participant
    proposal = selectors.course_proposal(participant=me, first=FIRST)
    assert proposal is not None
    state = {"withdrawn": False}

    def may_book(_participant: object) -> bool:
        return not state["withdrawn"]

    monkeypatch.setattr(f"{__name__}.withdrawn_from_study", may_book)
    settings.STOPCSAM_MAY_BOOK = f"{__name__}.withdrawn_from_study"  # type: ignore[attr-defined]
    real_lock = services._lock_participant

    def stop_from_another_tab(p):  # type: ignore[no-untyped-def]
        state["withdrawn"] = True  # the study's "stop" has committed meanwhile
        return real_lock(p)

    monkeypatch.setattr(services, "_lock_participant", stop_from_another_tab)
    with pytest.raises(BookingNotAllowedError):
        services.course_book(
            participant=me,
            therapist_id=proposal.therapist.pk,
            starts=[s.start for s in proposal.sessions],
        )
    assert not Appointment.objects.filter(participant=me, status=Status.BOOKED).exists()
