"""Writes of the chat: session lifecycle, messages, read markers, feedback, notes, escalation.

Every change that others must see is published to the hub only after its transaction commits
(``publish_on_commit``); the database stays the source of truth.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from stopcsam.accounts.models import StaffUser
from stopcsam.chat import appointments, timing
from stopcsam.chat.exceptions import (
    ChatError,
    InvalidMessageError,
    NotAllowedError,
    SessionEndedError,
    SessionNotLiveError,
    SessionNotOpenError,
)
from stopcsam.chat.hub import get_hub
from stopcsam.chat.models import (
    ChatSession,
    Escalation,
    RiskLevel,
    Sender,
    SessionNote,
    SessionState,
)
from stopcsam.core import clock, crypto
from stopcsam.core.audit import audit_record

BODY_CONTEXT = "chat.message.body"  # the context of ChatMessage.body, bound into each tag
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# Control characters other than tab and newline never belong in a chat message.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class StoredMessage:
    seq: int
    sender: str
    client_id: str
    sent_at: datetime | None  # None for a resend: only the number matters then
    created: bool
    token: str  # the ciphertext as stored, carried by the wake-up instead of plaintext


RESYNC: dict[str, Any] = {"t": "resync"}


def publish_on_commit(session_id: int, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: get_hub().publish(session_id, event))


# --- lifecycle -------------------------------------------------------------------------------


def session_sync(*, appointment: Mapping[str, Any]) -> ChatSession:
    """Create or refresh the session that mirrors an appointment (keyed by its reference)."""
    therapist = StaffUser.objects.select_related("site").get(pk=appointment["therapist_id"])
    fields = {
        "participant_id": appointment["participant_id"],
        "therapist": therapist,
        "starts_at": appointment["starts_at"],
        "ends_at": appointment["ends_at"],
        "number": appointment.get("number") or 1,
        "of": appointment.get("of") or 1,
        "language": appointment.get("language") or "en",
        "read_along": therapist.site.code in settings.CHAT_READ_ALONG_SITES,
    }
    session, created = ChatSession.objects.get_or_create(
        appointment_ref=appointment["appointment_ref"], defaults=fields
    )
    if not created and session.state in (SessionState.SCHEDULED, SessionState.WAITING):
        changed = [name for name, value in fields.items() if getattr(session, name) != value]
        for name in changed:
            setattr(session, name, fields[name])
        if changed:
            session.save(update_fields=[n.removesuffix("_id") for n in changed])
    return session


def session_enter(*, session: ChatSession, role: str) -> ChatSession:
    """The participant arrives: from now on they wait to be admitted (not a no-show)."""
    session_expire_if_due(session=session)
    if session.state == SessionState.ENDED:
        return session
    if clock.now() < timing.opens_at(session):
        raise SessionNotOpenError
    if role != Sender.PARTICIPANT or session.state != SessionState.SCHEDULED:
        return session
    with transaction.atomic():
        updated = ChatSession.objects.filter(pk=session.pk, state=SessionState.SCHEDULED).update(
            state=SessionState.WAITING, joined_at=clock.now()
        )
        if updated:
            ref = session.appointment_ref
            transaction.on_commit(
                lambda: appointments.notify_joined(appointment_ref=ref, role=role)
            )
            publish_on_commit(session.pk, {"t": "state"})
    session.refresh_from_db()
    return session


def session_admit(*, session: ChatSession, therapist: StaffUser) -> ChatSession:
    if session.therapist_id != therapist.pk:
        raise NotAllowedError
    if session.state == SessionState.ENDED:
        raise SessionEndedError
    with transaction.atomic():
        updated = ChatSession.objects.filter(pk=session.pk, state=SessionState.WAITING).update(
            state=SessionState.LIVE, admitted_at=clock.now()
        )
        if updated:
            audit_record(actor=therapist.audit_ref, action="chat.admit", subject=session.audit_ref)
            publish_on_commit(session.pk, {"t": "state"})
    session.refresh_from_db()
    if session.state != SessionState.LIVE:
        raise SessionNotOpenError  # nobody is waiting yet
    return session


def session_end(*, session: ChatSession, ended_by: str, actor: str) -> ChatSession:
    """End a session (the therapist's choice or the timer); idempotent."""
    with transaction.atomic():
        updated = ChatSession.objects.filter(
            pk=session.pk, state__in=[SessionState.LIVE, SessionState.WAITING]
        ).update(state=SessionState.ENDED, ended_at=clock.now(), ended_by=ended_by)
        if updated:
            audit_record(
                actor=actor, action="chat.end", subject=session.audit_ref, detail={"by": ended_by}
            )
            publish_on_commit(session.pk, {"t": "state"})
            if session.admitted_at is not None or session.state == SessionState.LIVE:
                ref = session.appointment_ref
                transaction.on_commit(lambda: appointments.notify_attended(appointment_ref=ref))
    session.refresh_from_db()
    return session


def session_expire_if_due(*, session: ChatSession) -> bool:
    """Force the end once the planned end plus the grace period has passed."""
    forced = timing.forced_end_at(session)
    if session.state != SessionState.LIVE or forced is None or clock.now() < forced:
        return False
    session_end(session=session, ended_by="timer", actor="system")
    return True


# --- messages --------------------------------------------------------------------------------


def message_clean(body: object) -> str:
    if not isinstance(body, str):
        raise InvalidMessageError
    text = CONTROL.sub("", body.replace("\r\n", "\n").replace("\r", "\n"))
    if not text.strip() or len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise InvalidMessageError
    return text


@dataclass(frozen=True)
class SendRequest:
    session_id: int
    sender: str
    client_id: str
    body: object


def message_send(*, session_id: int, sender: str, client_id: str, body: object) -> StoredMessage:
    """Store one message (see ``messages_send``); raise its domain error if refused."""
    (result,) = messages_send(requests=[SendRequest(session_id, sender, client_id, body)])
    if isinstance(result, ChatError):
        raise result
    return result


def messages_send(*, requests: list[SendRequest]) -> list[StoredMessage | ChatError]:
    """Store messages, each under the next gapless sequence number of its session, or return
    the message stored before for the same client id (a resend). One transaction for all: the
    socket writer's group commit. A refused message leaves no gap and does not sink the others.
    Published to the hub after the commit."""
    cleaned = [_validated(request) for request in requests]
    with transaction.atomic():
        earlier = _earlier_messages([r for r in cleaned if not isinstance(r, ChatError)])
        results: list[StoredMessage | ChatError] = list(cleaned)  # type: ignore[arg-type]
        rows: list[tuple[Any, ...]] = []
        # Lock session rows in ascending id order, so that writers of several processes never
        # deadlock; within one session the arrival order is kept (the sort is stable).
        for index in sorted(range(len(cleaned)), key=lambda i: requests[i].session_id):
            item = cleaned[index]
            if not isinstance(item, ChatError):
                results[index] = _allocate(item, earlier, rows)
        if rows:
            _insert(rows)
        # A resend may follow a crash between an earlier commit and its wake-up: wake the
        # session again (receivers fetch from the database what they have not seen).
        events = [
            (request.session_id, _message_event(result) if result.created else RESYNC)
            for request, result in zip(requests, results, strict=True)
            if isinstance(result, StoredMessage)
        ]
        if events:
            transaction.on_commit(lambda: get_hub().publish_many(events))
    return results


def _validated(request: SendRequest) -> SendRequest | ChatError:
    if not CLIENT_ID.match(request.client_id) or request.sender not in Sender.values:
        return InvalidMessageError()
    try:
        return SendRequest(
            request.session_id, request.sender, request.client_id, message_clean(request.body)
        )
    except ChatError as error:
        return error


EarlierKey = tuple[int, str, str]


def _earlier_messages(requests: list[SendRequest]) -> dict[EarlierKey, StoredMessage]:
    """Messages already stored for these client ids: one query for the whole batch."""
    if not requests:
        return {}
    sessions = sorted({r.session_id for r in requests})
    client_ids = sorted({r.client_id for r in requests})
    # Raw SQL: this runs once per batch on the hot path, where compiling an ORM query costs
    # more than executing it.
    marks = ", ".join(["%s"] * len(sessions)), ", ".join(["%s"] * len(client_ids))
    sql = (
        "SELECT session_id, sender, client_id, seq FROM chat_chatmessage "  # noqa: S608
        f"WHERE session_id IN ({marks[0]}) AND client_id IN ({marks[1]})"  # only placeholders
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*sessions, *client_ids])
        rows = cursor.fetchall()
    return {
        (sid, sender, cid): StoredMessage(seq, sender, cid, None, created=False, token="")
        for sid, sender, cid, seq in rows
    }


def _allocate(
    request: SendRequest, earlier: dict[EarlierKey, StoredMessage], rows: list[tuple[Any, ...]]
) -> StoredMessage | ChatError:
    key = (request.session_id, request.sender, request.client_id)
    if key in earlier:
        return earlier[key]
    # One statement takes the row lock, checks the state and hands out the next number.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE chat_chatsession SET last_seq = last_seq + 1 "
            "WHERE id = %s AND state = %s RETURNING last_seq",
            [request.session_id, SessionState.LIVE],
        )
        row = cursor.fetchone()
    if row is None:
        return _not_live(request.session_id)
    token = crypto.encrypt(str(request.body), context=BODY_CONTEXT)
    stored = StoredMessage(row[0], request.sender, request.client_id, clock.now(), True, token)
    earlier[key] = StoredMessage(
        stored.seq, stored.sender, stored.client_id, stored.sent_at, False, ""
    )
    rows.append(
        (request.session_id, stored.seq, stored.sender, stored.client_id, token, stored.sent_at)
    )
    return stored


def _not_live(session_id: int) -> ChatError:
    state = ChatSession.objects.filter(pk=session_id).values_list("state", flat=True).first()
    return SessionEndedError() if state == SessionState.ENDED else SessionNotLiveError()


def _insert(rows: list[tuple[Any, ...]]) -> None:
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO chat_chatmessage (session_id, seq, sender, client_id, body, sent_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [(*row[:5], adapt(row[5])) for row in rows],
        )


def _message_event(stored: StoredMessage) -> dict[str, Any]:
    return {
        "t": "msg",
        "seq": stored.seq,
        "sender": stored.sender,
        "sent_at": stored.sent_at.isoformat() if stored.sent_at else "",
        "ct": stored.token,
    }


def read_mark(*, session: ChatSession, sender: str, seq: int) -> None:
    field = "participant_read_seq" if sender == Sender.PARTICIPANT else "therapist_read_seq"
    with transaction.atomic():
        updated = ChatSession.objects.filter(
            pk=session.pk, last_seq__gte=seq, **{f"{field}__lt": seq}
        ).update(**{field: seq})
        if updated:
            publish_on_commit(session.pk, {"t": "read", "sender": sender, "seq": seq})


# --- after the session -------------------------------------------------------------------------


def feedback_record(*, session: ChatSession, rating: int) -> None:
    if session.state != SessionState.ENDED:
        raise SessionNotLiveError
    if rating not in range(1, 6):
        raise InvalidMessageError
    ChatSession.objects.filter(pk=session.pk).update(feedback=rating)


def note_save(
    *, session: ChatSession, author: StaffUser, body: str, risk_level: str, risk_notes: str
) -> SessionNote:
    if session.therapist_id != author.pk:
        raise NotAllowedError
    if risk_level and risk_level not in RiskLevel.values:
        raise InvalidMessageError
    with transaction.atomic():
        note, _ = SessionNote.objects.update_or_create(
            session=session,
            defaults={
                "author": author,
                "body": body,
                "risk_level": risk_level,
                "risk_notes": risk_notes,
                "updated_at": clock.now(),
            },
        )
        audit_record(
            actor=author.audit_ref,
            action="chat.note_saved",
            subject=session.audit_ref,
            detail={"risk_level": risk_level},
        )
    return note


def escalation_raise(*, session: ChatSession, raised_by: StaffUser, reason: str) -> Escalation:
    if session.therapist_id != raised_by.pk:
        raise NotAllowedError
    with transaction.atomic():
        escalation = Escalation.objects.create(
            session=session, raised_by=raised_by, reason=reason, raised_at=clock.now()
        )
        audit_record(actor=raised_by.audit_ref, action="chat.escalate", subject=session.audit_ref)
    return escalation


def escalation_resolve(*, escalation: Escalation, supervisor: StaffUser) -> None:
    with transaction.atomic():
        Escalation.objects.filter(pk=escalation.pk, resolved_at__isnull=True).update(
            resolved_at=clock.now()
        )
        audit_record(
            actor=supervisor.audit_ref,
            action="chat.escalation_resolved",
            subject=escalation.session.audit_ref,
        )


def session_shred(*, session: ChatSession, actor: str) -> None:
    """Delete the transcript, notes and escalations of a session (retention)."""
    with transaction.atomic():
        session.messages.all().delete()
        SessionNote.objects.filter(session=session).delete()
        session.escalations.all().delete()
        ChatSession.objects.filter(pk=session.pk).update(shredded_at=clock.now())
        audit_record(actor=actor, action="chat.shred", subject=session.audit_ref)


def sessions_shred_expired(*, dry_run: bool = False) -> int:
    """Shred every session of participants whose last session ended before the cut-off."""
    from django.db.models import Max

    cutoff = clock.now() - timedelta(days=settings.CHAT_RETENTION_DAYS)
    expired_participants = (
        ChatSession.objects.values("participant_id")
        .annotate(last=Max("ends_at"))
        .filter(last__lt=cutoff)
        .values("participant_id")
    )
    due = ChatSession.objects.filter(
        participant_id__in=expired_participants, shredded_at__isnull=True
    )
    if dry_run:
        return due.count()
    shredded = 0
    for session in due.iterator():
        session_shred(session=session, actor="system:retention")
        shredded += 1
    return shredded
