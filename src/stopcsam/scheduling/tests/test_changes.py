"""Rescheduling, cancelling, boosters and hand-overs: rules, cut-offs, history, audit."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from stopcsam.core.models import AuditEvent
from stopcsam.core.signals import session_outcome
from stopcsam.scheduling import selectors, services
from stopcsam.scheduling.exceptions import (
    ChangeTooLateError,
    HandoverRefusedError,
    NotChangeableError,
    SlotUnavailableError,
)
from stopcsam.scheduling.models import Appointment, ChangeKind, Course, Kind, Status
from stopcsam.scheduling.services import Actor
from stopcsam.scheduling.tests.conftest import FrozenClock

BERLIN = ZoneInfo("Europe/Berlin")
FIRST = datetime(2026, 3, 17, 16, 0, tzinfo=UTC)
WINDOWS = [(1, time(17), time(20)), (3, time(17), time(20))]


@pytest.fixture
def course(frozen: FrozenClock, participant, therapist, bookable) -> Course:  # type: ignore[no-untyped-def]
    bookable(therapist.user, WINDOWS)
    proposal = selectors.course_proposal(participant=participant.participant, first=FIRST)
    assert proposal is not None
    return services.course_book(
        participant=participant.participant,
        therapist_id=proposal.therapist.pk,
        starts=[s.start for s in proposal.sessions],
    )


def _sessions(course: Course) -> list[Appointment]:
    return list(course.appointments.order_by("start"))


def test_a_participant_moves_one_session_and_keeps_its_ref(course: Course) -> None:
    first = _sessions(course)[0]
    thursday = datetime(2026, 3, 19, 17, 0, tzinfo=UTC)  # Thu 18:00 Berlin
    services.appointment_reschedule(
        appointment=first, new_start=thursday, actor=Actor.participant()
    )
    first.refresh_from_db()
    assert first.start == thursday and first.end == thursday + timedelta(minutes=50)
    assert [s.start for s in _sessions(course)][1:] == [
        datetime(2026, 3, 24, 16, tzinfo=UTC),
        datetime(2026, 3, 31, 15, tzinfo=UTC),
        datetime(2026, 4, 7, 15, tzinfo=UTC),
    ]
    history = list(first.changes.values_list("kind", "old_start", "new_start"))
    assert history[-1] == (ChangeKind.RESCHEDULED, FIRST, thursday)
    assert AuditEvent.objects.filter(action="scheduling.rescheduled").exists()


def test_moving_the_rest_keeps_a_weekly_rhythm_at_the_new_local_time(course: Course) -> None:
    second = _sessions(course)[1]
    thursday = datetime(2026, 3, 26, 17, 0, tzinfo=UTC)  # Thu 26 March, 18:00 Berlin
    services.appointment_reschedule(
        appointment=second, new_start=thursday, actor=Actor.participant(), rest=True
    )
    local = [s.start.astimezone(BERLIN).strftime("%a %d %H:%M") for s in _sessions(course)]
    assert local == ["Tue 17 17:00", "Thu 26 18:00", "Thu 02 18:00", "Thu 09 18:00"]


def test_moving_the_rest_leaves_a_booster_at_its_own_time(course: Course, therapist) -> None:  # type: ignore[no-untyped-def]
    """A booster planned weeks after the course was pulled into the weekly rhythm, to the
    week after the last session, when the participant moved "this and all later ones"."""
    booster_time = datetime(2026, 5, 12, 16, tzinfo=UTC)  # Tue 12 May, 18:00 Berlin
    booster = services.course_add_booster(
        course=course, start=booster_time, actor=Actor.of_staff(therapist.user)
    )
    second = _sessions(course)[1]
    thursday = datetime(2026, 3, 26, 17, 0, tzinfo=UTC)  # Thu 26 March, 18:00 Berlin
    services.appointment_reschedule(
        appointment=second, new_start=thursday, actor=Actor.participant(), rest=True
    )
    booster.refresh_from_db()
    assert booster.start == booster_time
    local = [s.start.astimezone(BERLIN).strftime("%a %d %H:%M") for s in _sessions(course)]
    assert local[:4] == ["Tue 17 17:00", "Thu 26 18:00", "Thu 02 18:00", "Thu 09 18:00"]


def test_a_time_that_is_not_free_is_refused(course: Course) -> None:
    first, second = _sessions(course)[:2]
    with pytest.raises(SlotUnavailableError):
        services.appointment_reschedule(
            appointment=first, new_start=second.start, actor=Actor.participant()
        )
    with pytest.raises(SlotUnavailableError):  # outside the weekly hours
        services.appointment_reschedule(
            appointment=first,
            new_start=datetime(2026, 3, 18, 3, tzinfo=UTC),
            actor=Actor.participant(),
        )


def test_the_participant_cut_off_is_stricter_than_the_therapists(
    course: Course, frozen: FrozenClock, therapist
) -> None:  # type: ignore[no-untyped-def]
    first = _sessions(course)[0]
    frozen.set(FIRST - timedelta(hours=6))
    with pytest.raises(ChangeTooLateError):
        services.appointment_cancel(appointment=first, actor=Actor.participant())
    services.appointment_cancel(appointment=first, actor=Actor.of_staff(therapist.user))
    first.refresh_from_db()
    assert first.status == Status.CANCELLED
    with pytest.raises(NotChangeableError):
        services.appointment_cancel(appointment=first, actor=Actor.of_staff(therapist.user))


def test_cancelling_the_rest_ends_the_course_and_reports_each_session(
    course: Course, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[str, str]] = []

    def receiver(sender: object, **kwargs: object) -> None:
        seen.append((str(kwargs["appointment_ref"]), str(kwargs["outcome"])))

    session_outcome.connect(receiver)
    try:
        second = _sessions(course)[1]
        with django_capture_on_commit_callbacks(execute=True):
            cancelled = services.appointment_cancel(
                appointment=second, actor=Actor.participant(), rest=True
            )
    finally:
        session_outcome.disconnect(receiver)
    assert len(cancelled) == 3
    assert [s.status for s in _sessions(course)] == [Status.BOOKED] + [Status.CANCELLED] * 3
    course.refresh_from_db()
    assert course.ended_at is None  # the first session is still booked
    assert sorted(seen) == sorted((a.ref, "cancelled") for a in cancelled)
    services.appointment_cancel(appointment=_sessions(course)[0], actor=Actor.participant())
    course.refresh_from_db()
    assert course.ended_at is not None


def test_a_cancelled_slot_can_be_booked_again(course: Course, other_participant) -> None:  # type: ignore[no-untyped-def]
    services.appointment_cancel(
        appointment=_sessions(course)[0], actor=Actor.participant(), rest=True
    )
    proposal = selectors.course_proposal(participant=other_participant.participant, first=FIRST)
    assert proposal is not None and proposal.moved == 0


def test_the_therapist_adds_a_booster_session(course: Course, therapist) -> None:  # type: ignore[no-untyped-def]
    booster_time = datetime(2026, 4, 14, 15, tzinfo=UTC)
    booster = services.course_add_booster(
        course=course, start=booster_time, actor=Actor.of_staff(therapist.user)
    )
    assert booster.kind == Kind.BOOSTER and booster.course_id == course.pk
    assert course.appointments.count() == 5


def test_only_the_courses_therapist_adds_boosters(course: Course, therapist_es) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionError):
        services.course_add_booster(
            course=course,
            start=datetime(2026, 4, 14, 15, tzinfo=UTC),
            actor=Actor.of_staff(therapist_es.user),
        )


def test_a_course_is_handed_to_a_colleague_who_speaks_its_language(
    course: Course, therapist, therapist_es, bookable
) -> None:  # type: ignore[no-untyped-def]
    bookable(therapist_es.user, [], tz="Europe/Madrid")
    services.course_hand_over(
        course=course, to_therapist=therapist_es.user, actor=Actor.of_staff(therapist.user)
    )
    course.refresh_from_db()
    assert course.therapist_id == therapist_es.user.pk
    assert {s.therapist_id for s in _sessions(course)} == {therapist_es.user.pk}
    event = AuditEvent.objects.get(action="scheduling.course_handed_over")
    assert event.detail == {"from": therapist.user.audit_ref, "to": therapist_es.user.audit_ref}
    change = _sessions(course)[0].changes.last()
    assert change is not None and change.kind == ChangeKind.HANDED_OVER
    assert change.old_therapist_id == therapist.user.pk


def test_a_hand_over_to_someone_without_the_language_is_refused(
    course: Course, therapist, therapist_es, bookable
) -> None:  # type: ignore[no-untyped-def]
    bookable(therapist_es.user, [], tz="Europe/Madrid")
    therapist_es.user.languages = ["es"]
    therapist_es.user.save()
    with pytest.raises(HandoverRefusedError):
        services.course_hand_over(
            course=course, to_therapist=therapist_es.user, actor=Actor.of_staff(therapist.user)
        )
    course.refresh_from_db()
    assert course.therapist_id == therapist.user.pk
    assert not AuditEvent.objects.filter(action="scheduling.course_handed_over").exists()


@pytest.mark.parametrize(("caseload", "taken"), [(0, False), (1, True)])
def test_a_hand_over_respects_the_colleagues_caseload(
    caseload: int, taken: bool, course: Course, therapist, therapist_es, bookable
) -> None:  # type: ignore[no-untyped-def]
    bookable(therapist_es.user, [], tz="Europe/Madrid", max_caseload=caseload)
    hand_over = lambda: services.course_hand_over(  # noqa: E731
        course=course, to_therapist=therapist_es.user, actor=Actor.of_staff(therapist.user)
    )
    if taken:
        hand_over()
    else:
        with pytest.raises(HandoverRefusedError):
            hand_over()
    course.refresh_from_db()
    assert course.therapist_id == (therapist_es.user.pk if taken else therapist.user.pk)


@pytest.mark.parametrize("by", ["rebook", "booster"])
def test_reopening_an_ended_course_respects_the_therapists_caseload(
    by: str, course: Course, participant, other_participant, therapist, bookable
) -> None:  # type: ignore[no-untyped-def]
    """A course that ended (every session cancelled) no longer counts towards the caseload;
    a new session in it opens it again, and counts. With the place taken meanwhile, it was
    added all the same: the therapist held more participants than their maximum."""
    first = _sessions(course)[0]
    services.appointment_cancel(appointment=first, actor=Actor.participant(), rest=True)
    course.refresh_from_db()
    assert course.ended_at is not None
    bookable(therapist.user, WINDOWS, max_caseload=1)
    proposal = selectors.course_proposal(participant=other_participant.participant, first=FIRST)
    assert proposal is not None and proposal.therapist.pk == therapist.user.pk
    services.course_book(
        participant=other_participant.participant,
        therapist_id=therapist.user.pk,
        starts=[s.start for s in proposal.sessions],
    )
    thursday = datetime(2026, 3, 19, 16, 0, tzinfo=UTC)  # 17:00 in Berlin
    if by == "rebook":  # and the page offers no time it would refuse
        first = Appointment.objects.select_related("course__therapist").get(pk=first.pk)
        assert selectors.reschedule_options(appointment=first, by_staff=False) == []
    with pytest.raises(SlotUnavailableError):
        if by == "rebook":
            services.appointment_rebook(
                appointment=first, new_start=thursday, actor=Actor.participant()
            )
        else:
            services.course_add_booster(
                course=course, start=thursday, actor=Actor.of_staff(therapist.user)
            )
    course.refresh_from_db()
    assert course.ended_at is not None
    assert selectors.caseloads([therapist.user.pk]) == {therapist.user.pk: 1}
    assert not course.appointments.filter(status=Status.BOOKED).exists()


@pytest.mark.parametrize("change", ["move", "rebook"])
def test_a_change_read_before_a_hand_over_checks_the_new_therapists_calendar(
    change: str, course: Course, participant, other_participant, therapist, therapist_es, bookable
) -> None:  # type: ignore[no-untyped-def]
    """A page read the session, then a colleague took the course over. The change locked and
    checked the former therapist's calendar, and wrote the colleague's: a session half an
    hour from one they already had (the database's own check only sees equal starts)."""
    first = Appointment.objects.select_related("course").get(pk=_sessions(course)[0].pk)
    if change == "rebook":
        services.appointment_cancel(appointment=first, actor=Actor.participant())
        first = Appointment.objects.select_related("course").get(pk=first.pk)
    lucia = therapist_es.user
    bookable(lucia, [(3, time(17), time(20))], tz="Europe/Madrid")
    services.course_hand_over(
        course=course, to_therapist=lucia, actor=Actor.of_staff(therapist.user)
    )
    thursday = datetime(2026, 3, 19, 16, 0, tzinfo=UTC)  # 17:00 in Berlin and Madrid
    other = Course.objects.create(
        participant=other_participant.participant, therapist=lucia, language="en",
        created_at=thursday - timedelta(days=10),
    )  # fmt: skip
    Appointment.objects.create(
        course=other, participant=other_participant.participant, therapist=lucia,
        start=thursday + timedelta(minutes=30), end=thursday + timedelta(minutes=80),
    )  # fmt: skip
    with pytest.raises(SlotUnavailableError):
        if change == "move":
            services.appointment_reschedule(
                appointment=first, new_start=thursday, actor=Actor.participant()
            )
        else:
            services.appointment_rebook(
                appointment=first, new_start=thursday, actor=Actor.participant()
            )
    starts = sorted(
        Appointment.objects.filter(therapist=lucia, status=Status.BOOKED).values_list(
            "start", flat=True
        )
    )
    assert all(b - a >= timedelta(minutes=60) for a, b in pairwise(starts))


def test_a_session_to_rebook_after_a_hand_over_offers_the_new_therapists_times(
    course: Course, therapist, therapist_es, bookable
) -> None:  # type: ignore[no-untyped-def]
    """The replacement is booked with the course's therapist; the page offered the times of
    the one who held the cancelled session, and refused most of them when one was chosen."""
    first = _sessions(course)[0]
    services.appointment_cancel(appointment=first, actor=Actor.participant())
    lucia = therapist_es.user
    bookable(lucia, [(4, time(9), time(12))], tz="Europe/Madrid")
    services.course_hand_over(
        course=course, to_therapist=lucia, actor=Actor.of_staff(therapist.user)
    )
    first = Appointment.objects.select_related("course__therapist", "therapist").get(pk=first.pk)
    options = selectors.reschedule_options(appointment=first, by_staff=False)
    assert options
    assert {o.astimezone(ZoneInfo("Europe/Madrid")).strftime("%a") for o in options} == {"Fri"}
    services.appointment_rebook(appointment=first, new_start=options[0], actor=Actor.participant())
