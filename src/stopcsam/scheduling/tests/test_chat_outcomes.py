"""Chat and scheduling agree on what became of a session, through the real hooks (no fakes):
found by a review helper, a late participant admitted and chatting stayed a no-show, and one
left in the waiting room counted as attended."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stopcsam.chat import services as chat
from stopcsam.chat.models import ChatSession, SessionState
from stopcsam.scheduling import selectors, services
from stopcsam.scheduling.models import Appointment, NoticeKind, Status
from stopcsam.scheduling.tests.conftest import FrozenClock
from stopcsam.scheduling.tests.test_noshow import FIRST, _first, course  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _chat_session(appointment: Appointment) -> ChatSession:
    found = selectors.chat_appointment(appointment_ref=appointment.ref)
    assert found is not None
    return chat.session_sync_confirmed(appointment=found)


def test_nobody_is_let_in_after_a_no_show_freed_the_slot(
    course,  # noqa: F811
    frozen: FrozenClock,
    participant_client,
    participant,
) -> None:
    first = _first(course)
    session = _chat_session(first)
    frozen.set(FIRST + timedelta(minutes=16))
    services.no_shows_mark()  # nobody joined within 15 minutes
    page = participant_client(participant).get(f"/en/chat/s/{session.public_id}/")
    html = page.content.decode()
    assert "This session was missed" in html and 'name="body"' not in html
    session.refresh_from_db()
    assert session.state == SessionState.ENDED and session.ended_by == "missed"
    with pytest.raises(chat.SessionEndedError):
        chat.session_admit(session=session, therapist=session.therapist)
    first.refresh_from_db()
    assert first.status == Status.NO_SHOW


def test_a_participant_never_let_in_is_neither_attended_nor_a_no_show(
    course,  # noqa: F811
    frozen: FrozenClock,
) -> None:
    first = _first(course)
    frozen.set(FIRST + timedelta(minutes=2))
    session = chat.session_enter(session=_chat_session(first), role="participant")
    frozen.set(first.end + timedelta(minutes=6))  # the waiting room has closed
    chat.sessions_expire_due()
    services.no_shows_mark()
    frozen.set(first.end + services.ATTENDED_FALLBACK + timedelta(minutes=1))
    services.no_shows_mark()
    session.refresh_from_db()
    first.refresh_from_db()
    assert session.state == SessionState.ENDED and session.admitted_at is None
    assert first.status == Status.CANCELLED  # by the service: the participant may rebook
    notice = selectors.open_notices(participant=course.participant).get()
    assert notice.kind == NoticeKind.CHANGED and notice.appointment_id == first.pk


def test_a_session_admitted_late_counts_as_attended(
    course,  # noqa: F811
    frozen: FrozenClock,
) -> None:
    first = _first(course)
    frozen.set(FIRST + timedelta(minutes=14))
    session = chat.session_enter(session=_chat_session(first), role="participant")
    services.no_shows_mark()  # joined in time: not a no-show
    frozen.set(FIRST + timedelta(minutes=40))
    session = chat.session_admit(session=session, therapist=session.therapist)
    frozen.set(first.end + timedelta(minutes=1))
    services.no_shows_mark()  # the chat is still going: nothing decided yet
    first.refresh_from_db()
    assert first.status == Status.BOOKED
    chat.session_end(session=session, ended_by="therapist", actor="staff:1")
    first.refresh_from_db()
    assert first.status == Status.ATTENDED


def test_stopping_taking_part_cancels_every_session_still_to_come(
    course,  # noqa: F811
    frozen: FrozenClock,
    participant,
) -> None:
    """Found by a review helper: after "stop", every session stayed booked, with reminders,
    in the therapist's week and in the chat. The study sends the signal (its own test)."""
    from stopcsam.core.signals import participant_withdrawn

    first = _first(course)
    session = _chat_session(first)
    frozen.set(FIRST + timedelta(days=1))  # the first session is over, three to come
    services.appointment_mark_attended(appointment_ref=first.ref)
    participant_withdrawn.send(sender=None, participant_id=participant.participant.pk)
    statuses = sorted(course.appointments.values_list("status", flat=True))
    assert statuses == [Status.ATTENDED] + [Status.CANCELLED] * 3
    course.refresh_from_db()
    assert course.ended_at is not None
    assert selectors.chat_appointments(since=FIRST, participant_id=participant.participant.pk) == [
        selectors.chat_appointment(appointment_ref=first.ref)
    ]
    session.refresh_from_db()
    assert session.state != SessionState.CANCELLED  # the one that took place stays
