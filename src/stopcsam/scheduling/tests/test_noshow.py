"""No-shows, attendance and reminders: the background sweep and the chat app's hooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.db import DatabaseError, connection

from stopcsam.core.signals import session_outcome
from stopcsam.scheduling import jobs, selectors, services
from stopcsam.scheduling.exceptions import BookingNotAllowedError, NotChangeableError
from stopcsam.scheduling.models import (
    Appointment,
    Course,
    Kind,
    NoticeKind,
    ParticipantNotice,
    Status,
)
from stopcsam.scheduling.services import Actor
from stopcsam.scheduling.tests.conftest import TUESDAY_EVENING, FrozenClock, book_course

FIRST = datetime(2026, 3, 17, 16, 0, tzinfo=UTC)


@pytest.fixture
def course(frozen: FrozenClock, participant, therapist, bookable) -> Course:  # type: ignore[no-untyped-def]
    bookable(therapist.user, TUESDAY_EVENING)
    proposal = selectors.course_proposal(participant=participant.participant, first=FIRST)
    assert proposal is not None
    return services.course_book(
        participant=participant.participant,
        therapist_id=proposal.therapist.pk,
        starts=[s.start for s in proposal.sessions],
    )


@pytest.fixture
def outcomes() -> list[tuple[int, str, str]]:
    seen: list[tuple[int, str, str]] = []

    def receiver(sender: object, **kwargs: object) -> None:
        seen.append(
            (int(kwargs["participant_id"]), str(kwargs["appointment_ref"]), str(kwargs["outcome"]))
        )  # type: ignore[call-overload]

    session_outcome.connect(receiver, weak=False)
    yield seen
    session_outcome.disconnect(receiver)


def _first(course: Course) -> Appointment:
    first = course.appointments.order_by("start").first()
    assert first is not None
    return first


def test_nobody_joining_for_fifteen_minutes_is_a_no_show(
    course: Course, frozen: FrozenClock, outcomes, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    first = _first(course)
    frozen.set(FIRST + timedelta(minutes=14, seconds=59))
    assert services.no_shows_mark() == 0
    frozen.set(FIRST + timedelta(minutes=15))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.no_shows_mark() == 1
        assert services.no_shows_mark() == 0  # idempotent
    first.refresh_from_db()
    assert first.status == Status.NO_SHOW
    assert outcomes == [(course.participant_id, first.ref, "no_show")]
    notice = selectors.open_notices(participant=course.participant).get()
    assert notice.kind == NoticeKind.MISSED and notice.appointment_id == first.pk


def test_a_participant_who_joined_is_not_a_no_show_and_counts_as_attended(
    course: Course, frozen: FrozenClock, outcomes, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    first = _first(course)
    frozen.set(FIRST + timedelta(minutes=3))
    services.appointment_mark_joined(appointment_ref=first.ref, role="participant")
    frozen.set(FIRST + timedelta(minutes=20))
    assert services.no_shows_mark() == 0
    with django_capture_on_commit_callbacks(execute=True):
        services.appointment_mark_attended(appointment_ref=first.ref)
    first.refresh_from_db()
    assert first.status == Status.ATTENDED
    assert outcomes == [(course.participant_id, first.ref, "attended")]


def test_a_joined_session_the_chat_never_closed_counts_as_attended_after_its_end(
    course: Course, frozen: FrozenClock
) -> None:
    first = _first(course)
    frozen.set(FIRST + timedelta(minutes=1))
    services.appointment_mark_joined(appointment_ref=first.ref, role="participant")
    frozen.set(first.end + timedelta(minutes=1))  # the chat may still end it (a late admit)
    services.no_shows_mark()
    first.refresh_from_db()
    assert first.status == Status.BOOKED
    frozen.set(first.end + services.ATTENDED_FALLBACK)
    services.no_shows_mark()
    first.refresh_from_db()
    assert first.status == Status.ATTENDED


def test_the_therapist_joining_alone_does_not_prevent_a_no_show(
    course: Course, frozen: FrozenClock
) -> None:
    first = _first(course)
    services.appointment_mark_joined(appointment_ref=first.ref, role="therapist")
    frozen.set(FIRST + timedelta(minutes=16))
    assert services.no_shows_mark() == 1


def _missed_first(course: Course, frozen: FrozenClock) -> tuple[Appointment, list[datetime]]:
    """The course's first session, missed, and the times it may be booked again."""
    first = _first(course)
    frozen.set(FIRST + timedelta(minutes=16))
    services.no_shows_mark()
    first.refresh_from_db()
    return first, selectors.reschedule_options(appointment=first, by_staff=False)


def test_a_missed_session_can_be_rebooked_with_the_same_therapist(
    course: Course, frozen: FrozenClock
) -> None:
    first, options = _missed_first(course, frozen)
    assert options and options[0] > FIRST
    new = services.appointment_rebook(
        appointment=first, new_start=options[0], actor=Actor.participant()
    )
    assert new.kind == Kind.REPLACEMENT and new.therapist_id == first.therapist_id
    assert course.appointments.filter(status=Status.BOOKED).count() == 4


def test_a_reminder_is_left_for_the_next_visit_the_day_before(
    course: Course, frozen: FrozenClock
) -> None:
    frozen.set(FIRST - timedelta(hours=25))
    assert services.reminders_create() == 0
    frozen.set(FIRST - timedelta(hours=23))
    assert services.reminders_create() == 1
    assert services.reminders_create() == 0
    notice = selectors.open_notices(participant=course.participant).get()
    services.notice_dismiss(participant=course.participant, notice_id=notice.pk)
    assert services.reminders_create() == 0  # a dismissed reminder does not come back
    assert not selectors.open_notices(participant=course.participant).exists()


def test_a_reminder_another_worker_left_meanwhile_does_not_stop_the_sweep(
    course: Course, frozen: FrozenClock, other_participant
) -> None:  # type: ignore[no-untyped-def]
    """Two workers sweeping at once: the other left the first session's reminder after this
    one found none and before it wrote its own. The unique constraint refused the second,
    and the error stopped that minute's sweep: no reminder for the next session."""
    later = book_course(other_participant.participant, FIRST + timedelta(hours=1))
    first = _first(course)
    raced: list[bool] = []

    def other_worker_first(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        """The sweep looks for a reminder and finds none; then the other worker leaves one."""
        found = execute(sql, params, many, context)
        if not raced and "participantnotice" in sql and "LIMIT 1" in sql:
            raced.append(True)
            ParticipantNotice.objects.create(
                participant_id=first.participant_id,
                appointment=first,
                kind=NoticeKind.UPCOMING,
                created_at=FIRST - timedelta(hours=23),
            )
        return found

    frozen.set(FIRST - timedelta(hours=23))
    with connection.execute_wrapper(other_worker_first):
        assert services.reminders_create() == 1
    assert raced
    for appointment in (first, _first(later)):
        notices = ParticipantNotice.objects.filter(appointment=appointment, dismissed_at=None)
        assert list(notices.values_list("kind", flat=True)) == [NoticeKind.UPCOMING]


def test_a_reminder_goes_once_its_session_has_begun_or_is_no_longer_booked(
    course: Course, frozen: FrozenClock
) -> None:
    """Found by a review helper: "your next session is soon" stayed after it took place."""
    _first_one, second = course.appointments.order_by("start")[:2]
    frozen.set(FIRST - timedelta(hours=23))
    services.reminders_create()
    assert selectors.open_notices(participant=course.participant).count() == 1
    frozen.set(FIRST + timedelta(minutes=1))  # it has begun
    assert not selectors.open_notices(participant=course.participant).exists()
    frozen.set(second.start - timedelta(hours=23))
    services.reminders_create()
    assert selectors.open_notices(participant=course.participant).count() == 1
    services.appointment_cancel(appointment=second, actor=Actor.participant())
    kinds = [n.kind for n in selectors.open_notices(participant=course.participant)]
    assert NoticeKind.UPCOMING not in kinds  # cancelled: no reminder of it


def test_a_moved_session_gets_a_reminder_for_its_new_time_not_the_old_one(
    course: Course, frozen: FrozenClock
) -> None:
    """The reminder of the old time stayed on the moved session: "your next session is soon"
    a week ahead, and one dismissed kept the new time from ever being reminded of."""
    first = _first(course)
    frozen.set(FIRST - timedelta(hours=23))
    services.reminders_create()
    notice = selectors.open_notices(participant=course.participant).get()
    later = FIRST + timedelta(weeks=1, hours=1)  # the next Tuesday's 18:00 is free
    services.appointment_reschedule(appointment=first, new_start=later, actor=Actor.participant())
    assert not selectors.open_notices(participant=course.participant).exists()
    services.notice_dismiss(participant=course.participant, notice_id=notice.pk)
    frozen.set(later - timedelta(hours=23))
    services.reminders_create()
    reminded = [
        n.appointment_id
        for n in selectors.open_notices(participant=course.participant)
        if n.kind == NoticeKind.UPCOMING
    ]
    assert first.pk in reminded


def test_the_offer_to_rebook_a_missed_session_goes_once_it_is_replaced(
    course: Course, frozen: FrozenClock
) -> None:
    """The offer "You missed a session. You can book a new time for it." stayed after the new
    time was booked, and its link led to "This session cannot be changed any more"."""
    first, options = _missed_first(course, frozen)
    assert [n.kind for n in selectors.open_notices(participant=course.participant)] == [
        NoticeKind.MISSED
    ]
    services.appointment_rebook(appointment=first, new_start=options[0], actor=Actor.participant())
    kinds = [n.kind for n in selectors.open_notices(participant=course.participant)]
    assert NoticeKind.MISSED not in kinds


def test_the_sweep_is_a_periodic_huey_task_that_runs_the_services(
    course: Course, frozen: FrozenClock
) -> None:
    frozen.set(FIRST + timedelta(minutes=30))
    due = [task.name for task in jobs.huey.read_periodic(datetime(2026, 3, 17, 16, 31))]
    assert any(name.endswith("sweep_sessions") for name in due)  # due every minute
    result = jobs.sweep_sessions.call_local()
    assert result["no_shows"] == 1


@pytest.mark.django_db(transaction=True)  # the sweep closes a connection after a fault
def test_a_failing_step_of_the_sweep_leaves_the_others_to_run(
    course: Course, frozen: FrozenClock
) -> None:
    """The no-show marking failed (the database away for a moment): the reminders and the
    other apps' minute jobs were left undone that minute."""
    frozen.set(FIRST + timedelta(minutes=30))
    with mock.patch.object(services, "no_shows_mark", side_effect=DatabaseError("away")):
        result = jobs.sweep_sessions.call_local()
    assert "no_shows" not in result
    assert "reminders" in result and "sessions_expire_due" in result


def test_other_pages_can_show_the_notices_with_a_template_tag(
    course: Course, frozen: FrozenClock, rf
) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.sessions.backends.db import SessionStore
    from django.template import RequestContext, Template

    frozen.set(FIRST + timedelta(minutes=16))
    services.no_shows_mark()
    request = rf.get("/en/")
    request.session = SessionStore()
    request.participant = course.participant
    html = Template("{% load scheduling_tags %}{% scheduling_notices %}").render(
        RequestContext(request)
    )
    assert "You missed a session" in html and "Book a new time" in html
    request.participant = None
    assert "You missed" not in Template(
        "{% load scheduling_tags %}{% scheduling_notices %}"
    ).render(RequestContext(request))


def nobody_may_book(participant: object) -> bool:
    return False


def test_a_missed_session_is_replaced_once_and_only_while_the_participant_may_book(
    course: Course, frozen: FrozenClock, settings: object
) -> None:
    first, options = _missed_first(course, frozen)
    settings.STOPCSAM_MAY_BOOK = f"{__name__}.nobody_may_book"  # type: ignore[attr-defined]
    with pytest.raises(BookingNotAllowedError):  # stopped taking part, for instance
        services.appointment_rebook(
            appointment=first, new_start=options[0], actor=Actor.participant()
        )
    settings.STOPCSAM_MAY_BOOK = None  # type: ignore[attr-defined]
    new = services.appointment_rebook(
        appointment=first, new_start=options[0], actor=Actor.participant()
    )
    assert new.replaces == first
    with pytest.raises(NotChangeableError):  # not a second time: no calendar to fill
        services.appointment_rebook(
            appointment=first, new_start=options[1], actor=Actor.participant()
        )
    assert course.appointments.filter(status=Status.BOOKED).count() == 4


def test_the_offer_to_rebook_goes_when_the_participant_may_no_longer_book(
    course: Course, frozen: FrozenClock, settings: object
) -> None:
    """After a stop the offer stayed, and its link answered "Booking is not open for you"."""
    _missed_first(course, frozen)
    settings.STOPCSAM_MAY_BOOK = f"{__name__}.nobody_may_book"  # type: ignore[attr-defined]
    kinds = [n.kind for n in selectors.open_notices(participant=course.participant)]
    assert NoticeKind.MISSED not in kinds
