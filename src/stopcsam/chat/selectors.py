"""Reads of the chat, with access control. A session that is not yours looks like none.

Staff reads of a transcript go through ``transcript_for_staff``, which writes exactly one
audit row per read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.utils.module_loading import import_string

from stopcsam.accounts.models import Participant, Role, StaffUser
from stopcsam.chat import appointments, timing
from stopcsam.chat.exceptions import ReadAlongOverError, SessionNotFoundError
from stopcsam.chat.models import (
    CLOSED_STATES,
    ChatMessage,
    ChatSession,
    ErasedEscalation,
    Escalation,
    SessionState,
)
from stopcsam.chat.services import session_as_booked, session_sync_confirmed
from stopcsam.core import clock
from stopcsam.core.audit import audit_record

logger = logging.getLogger("stopcsam.chat")

THERAPIST = "therapist"
READ_ALONG = "read_along"
ESCALATED = "escalated"  # a supervisor reading a session escalated to them (read-only)
LIST_SINCE = timedelta(days=120)


@dataclass(frozen=True)
class MessageView:
    seq: int
    sender: str
    body: str
    sent_at: datetime


def _refresh(public_id: str) -> ChatSession | None:
    """The session as its appointment now stands: moved, or cancelled once the wired source
    no longer knows an appointment it gave before. A session the source never gave (a
    benchmark's, or with no source wired) is left as it is."""
    found = ChatSession.objects.select_related("therapist__site").filter(public_id=public_id)
    session = found.first()
    if session is None or session.state in CLOSED_STATES:
        return session
    return session_as_booked(session=session)


def session_for_participant(*, participant: Participant, public_id: str) -> ChatSession:
    session = _refresh(public_id)
    if session is None or session.participant_id != participant.pk:
        raise SessionNotFoundError
    return session


def session_for_staff(*, user: StaffUser, public_id: str) -> tuple[ChatSession, str]:
    """The session and how this member of staff may see it: as its therapist, reading along
    as a supervisor of the same site while it runs when the site allows it, or read-only as a
    supervisor an open escalation of it reaches. Raises ReadAlongOverError for a supervisor
    who read along until the session ended."""
    session = _refresh(public_id)
    if session is None or not user.is_active:
        raise SessionNotFoundError
    # Its therapist while a therapist: one whose role changed (to coordinator, say) keeps no
    # way into the transcripts and notes (a review finding).
    if session.therapist_id == user.pk and user.role == Role.THERAPIST:
        return session, THERAPIST
    may_read_along = user.role == Role.SUPERVISOR and _read_along_allowed(user, session)
    if may_read_along and not _over(session):
        return session, READ_ALONG
    if (
        user.role == Role.SUPERVISOR
        and _escalations_reaching(user).filter(session=session).exists()
    ):
        return session, ESCALATED
    raise ReadAlongOverError if may_read_along else SessionNotFoundError


def _read_along_allowed(user: StaffUser, session: ChatSession) -> bool:
    """Only where the participant was told (the session's flag) and the site still allows it:
    a site taken off CHAT_READ_ALONG_SITES stops reading along in sessions already booked."""
    return (
        session.read_along
        and user.site_id == session.therapist.site_id
        and session.therapist.site.code in settings.CHAT_READ_ALONG_SITES
    )


def _over(session: ChatSession) -> bool:
    """Reading along is live, as the participant is told on the live page only: once the
    session has ended (or passed its forced end, not yet marked) its transcript is a staff
    read that needs a reason of its own, an open escalation. Reading along let a supervisor
    of the site open every finished session, without a reason or the participant's knowing
    (a review finding)."""
    if session.state in CLOSED_STATES:
        return True
    forced = timing.forced_end_at(session)
    return session.state == SessionState.LIVE and forced is not None and clock.now() >= forced


def sessions_of_participant(*, participant: Participant) -> list[ChatSession]:
    since = clock.now() - LIST_SINCE
    for item in appointments.appointments_list(participant_id=participant.pk, since=since):
        if item["participant_id"] == participant.pk:
            session_sync_confirmed(appointment=item)
    return list(ChatSession.objects.filter(participant=participant, starts_at__gte=since))


def sessions_of_therapist(*, user: StaffUser) -> list[ChatSession]:
    """A therapist's recent and coming sessions; none for another role, which cannot open
    them (``session_for_staff``): a member of staff moved to another role saw their old
    sessions listed, each link a 404."""
    if user.role != Role.THERAPIST:
        return []
    since = clock.now() - LIST_SINCE
    listed = set()
    for item in appointments.appointments_list(therapist_id=user.pk, since=since):
        if item["therapist_id"] == user.pk:
            session_sync_confirmed(appointment=item)
            listed.add(item["appointment_ref"])
    found = list(ChatSession.objects.filter(therapist=user, starts_at__gte=since))
    # One still open that the source no longer lists as theirs was handed over (or called
    # off) since it was last synced: brought in line, it drops out of this list rather
    # than linking to a session that is no longer theirs (a 404; a review finding).
    stale = [
        session.pk
        for session in found
        if session.source_confirmed
        and session.state not in CLOSED_STATES
        and session.appointment_ref not in listed
    ]
    if not stale:
        return found
    for session in found:
        if session.pk in stale:
            session_as_booked(session=session)
    return list(ChatSession.objects.filter(therapist=user, starts_at__gte=since))


def messages_after(*, session_id: int, after: int, limit: int = 500) -> list[MessageView]:
    """The conversation for its own two members (no audit: it is their own chat)."""
    rows = ChatMessage.objects.filter(session_id=session_id, seq__gt=after).order_by("seq")
    return [
        MessageView(m.seq, m.sender, m.body, m.sent_at)
        for m in rows.only("session_id", "seq", "sender", "client_id", "body", "sent_at")[:limit]
    ]


def transcript_for_staff(*, user: StaffUser, session: ChatSession, via: str) -> list[MessageView]:
    """A transcript shown to staff. Exactly one audit row per read."""
    messages = messages_after(session_id=session.pk, after=0, limit=100_000)
    audit_record(
        actor=user.audit_ref,
        action="chat.transcript_read",
        subject=session.audit_ref,
        detail={"via": via, "messages": len(messages)},
    )
    return messages


PAGE_READ_SECONDS = 60  # how long a console page's audited read covers its socket's hello


def _page_read_key(session_key: str, session: ChatSession) -> str:
    # A digest of the Django session key: the key itself is a credential.
    sign_in = hashlib.sha256(session_key.encode()).hexdigest()[:32]
    return f"chat:page-read:{sign_in}:{session.public_id}"


def page_read_note(*, session_key: str, session: ChatSession, role: str, seq: int) -> None:
    """Note a console page's audited read for its own socket's hello, for PAGE_READ_SECONDS,
    in the cache (Redis when scaled out): not in the Django session, whose every write
    renewed the sign-in's expiry, so a refreshing console never signed out (a review
    finding). A cache out of reach only costs the hello its own audit row."""
    if not session_key:
        return
    try:
        cache.set(_page_read_key(session_key, session), [role, seq], PAGE_READ_SECONDS)
    except Exception:
        logger.warning("chat: the cache is unreachable; the console's socket audits its read")


def staff_hello_audit(
    *, actor: str, session_key: str, session: ChatSession, role: str, access: str, after: int
) -> None:
    """A staff socket's ``hello``: one audited transcript read, with what it replays (the
    messages after ``after``). Also when it replays nothing: the socket goes on to receive
    every message stored while it is open, and a socket opened without the console page (a
    supervisor reading along from the first message) left no trace otherwise (a review
    finding). Its row names how the socket may read (``access``: therapist, read_along or
    escalated), as the console's does. The exception is the console page's own socket: a
    hello of the same sign-in and role that replays nothing the page's audited read of the
    last PAGE_READ_SECONDS did not show. That read covers one hello only: it is taken from
    the cache here (a review finding: one page read covered any number of sockets)."""
    key = _page_read_key(session_key, session)
    try:
        noted = cache.get(key)
        taken = noted is not None and cache.delete(key)
    except Exception:
        noted, taken = None, False
    if taken and noted == [role, after] and after == session.last_seq:
        return
    audit_record(
        actor=actor,
        action="chat.transcript_read",
        subject=session.audit_ref,
        detail={"via": f"socket.{access}", "after": after, "messages": session.last_seq - after},
    )


def previous_sessions(*, session: ChatSession) -> list[ChatSession]:
    """The participant's earlier sessions, for the therapist of this one, with their notes
    (also those of another therapist, after a hand-over). None through a cancelled session,
    nor through one that ended without the participant being admitted (missed, or not held,
    which scheduling counts as cancelled): its therapist never treated the participant there
    (a review finding)."""
    if session.state == SessionState.CANCELLED:
        return []
    if session.state == SessionState.ENDED and session.admitted_at is None:
        return []
    return list(
        ChatSession.objects.filter(
            participant_id=session.participant_id, starts_at__lt=session.starts_at
        )
        .select_related("note")
        .order_by("starts_at")
    )


def study_id(*, participant_id: int) -> str:
    """The study's pseudonymous id when wired, else a keyed pseudonym of our own."""
    hook = settings.STOPCSAM_PARTICIPANT_STUDY_ID
    found = import_string(hook)(participant_id) if hook else None
    if found:
        return str(found)
    digest = hmac.new(
        settings.STOPCSAM_LOOKUP_KEY.encode(),
        f"stopcsam.chat.pseudonym\x00{participant_id}".encode(),
        hashlib.sha256,
    ).hexdigest()
    return f"P-{digest[:10].upper()}"


def escalations_for_supervisor(*, user: StaffUser) -> list[Escalation]:
    """Open escalations that reach this supervisor (``_escalations_reaching``), oldest first;
    other staff see none. Each with the participant's study ID (``study_id``)."""
    if user.role != Role.SUPERVISOR or not user.is_active:
        return []
    found = list(
        _escalations_reaching(user).select_related("session", "raised_by").order_by("raised_at")
    )
    for escalation in found:
        escalation.study_id = study_id(participant_id=escalation.session.participant_id)  # type: ignore[attr-defined]
    return found


def erased_escalations_for_supervisor(*, user: StaffUser) -> list[ErasedEscalation]:
    """Open escalations that went with their participant's data ("stop and erase"), for the
    supervisors they reached, by the site of the therapist who raised them; oldest first."""
    if user.role != Role.SUPERVISOR or not user.is_active:
        return []
    return list(
        ErasedEscalation.objects.filter(_reaching(user, "raised_by__site_id"))
        .select_related("raised_by")
        .order_by("raised_at")
    )


def _escalations_reaching(user: StaffUser) -> QuerySet[Escalation]:
    """The open escalations of the supervisor's site, and those of every site that has no
    active supervisor: an escalation must reach somebody (found by a review helper: the
    sites without a supervisor sent theirs to nobody, and the therapist was told it had
    gone)."""
    return Escalation.objects.filter(resolved_at__isnull=True).filter(
        _reaching(user, "session__therapist__site_id")
    )


def _reaching(user: StaffUser, site: str) -> Q:
    """Rows whose ``site`` is the supervisor's own, or a site with no active supervisor."""
    covered = StaffUser.objects.filter(role=Role.SUPERVISOR, is_active=True).values("site_id")
    return Q(**{site: user.site_id}) | ~Q(**{f"{site}__in": covered})


def escalation_reach(*, therapist: StaffUser) -> str:
    """Who an escalation by this therapist reaches: "site" (a supervisor of their site),
    "all" (their site has none: the supervisors of every site) or "none" (no active
    supervisor at all: the console says to follow the site's emergency procedure)."""
    supervisors = StaffUser.objects.filter(role=Role.SUPERVISOR, is_active=True)
    if supervisors.filter(site_id=therapist.site_id).exists():
        return "site"
    return "all" if supervisors.exists() else "none"


Guide = dict[str, dict[str, list[str]]]
_guide_cache: dict[str, Any] = {"key": None, "guide": {}}


class GuideFileError(ValueError):
    """The session-guide file is not what docs/therapists.md describes."""


def guide_load(path: str) -> Guide:
    """Read and check the session-guide file: ``{"<language>": {"<number>": ["step", ...]}}``.
    Raises GuideFileError naming what is wrong."""
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise GuideFileError(f"cannot be read ({type(error).__name__})") from error
    except json.JSONDecodeError as error:
        raise GuideFileError(f"is not JSON (line {error.lineno}, column {error.colno})") from error
    if not isinstance(content, dict):
        raise GuideFileError("must be an object of languages")
    for language, numbers in content.items():
        if not isinstance(numbers, dict):
            raise GuideFileError(f"{language!r} must be an object of session numbers")
        for number, steps in numbers.items():
            if not number.isdigit():
                raise GuideFileError(f"{language!r}: {number!r} is not a session number")
            if not isinstance(steps, list) or not all(isinstance(x, str) for x in steps):
                raise GuideFileError(f"{language!r}, session {number}: must be a list of texts")
    return content


def session_guide(*, number: int, language: str) -> list[str]:
    """The structured guide for session ``number`` from the site's content file
    (``CHAT_SESSION_GUIDE_FILE``), read again when it changes. A faulty file (which a system
    check names at start) shows no guide and is logged: it never takes the console down."""
    path = settings.CHAT_SESSION_GUIDE_FILE
    if not path:
        return []
    try:
        stat = Path(path).stat()
        key = (path, stat.st_mtime_ns, stat.st_size)
        if _guide_cache["key"] != key:
            _guide_cache.update(key=key, guide=guide_load(path))
    except (OSError, GuideFileError) as error:
        reason = error if isinstance(error, GuideFileError) else "cannot be read"
        logger.error("chat: the session guide file %s; no guide is shown", reason)
        return []
    guide: Guide = _guide_cache["guide"]
    by_language = guide.get(language) or guide.get("en") or {}
    return by_language.get(str(number), [])
