"""When a session opens, warns and ends: pure functions of the session and settings."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from stopcsam.chat.models import ChatSession, SessionState


def opens_at(session: ChatSession) -> datetime:
    return session.starts_at - timedelta(seconds=settings.CHAT_OPEN_BEFORE_SECONDS)


def deadline(session: ChatSession) -> datetime | None:
    """The planned end: the session length after the therapist admitted the participant, but
    no later than the booked end when they were admitted after the booked start. A late
    session ran its full length past its slot, into the therapist's next one (a review
    finding)."""
    if session.admitted_at is None:
        return None
    planned = session.admitted_at + timedelta(seconds=settings.CHAT_SESSION_SECONDS)
    if session.admitted_at > session.starts_at:
        return min(planned, max(session.ends_at, session.admitted_at))
    return planned


def forced_end_at(session: ChatSession) -> datetime | None:
    planned = deadline(session)
    return planned + timedelta(seconds=settings.CHAT_GRACE_SECONDS) if planned else None


def closes_unadmitted_at(session: ChatSession) -> datetime:
    """A session nobody admitted closes at its booked end plus the grace period: a waiting
    room does not stay open, nor a session start, hours or days after the appointment."""
    return session.ends_at + timedelta(seconds=settings.CHAT_GRACE_SECONDS)


def remaining_seconds(session: ChatSession, now: datetime) -> int | None:
    planned = deadline(session)
    return None if planned is None else int((planned - now).total_seconds())


def in_warning(session: ChatSession, now: datetime) -> bool:
    left = remaining_seconds(session, now)
    return left is not None and left <= settings.CHAT_WARNING_SECONDS


def waiting_room_open(session: ChatSession, now: datetime) -> bool:
    """A session not yet entered whose waiting room is open now."""
    return session.state == SessionState.SCHEDULED and opens_at(
        session
    ) <= now < closes_unadmitted_at(session)
