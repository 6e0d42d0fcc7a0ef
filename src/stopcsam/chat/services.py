"""Writes of the chat: session lifecycle, messages, read markers, feedback, notes, escalation.

Every change that others must see is published to the hub only after its transaction commits
(``publish_on_commit``); the database stays the source of truth.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Q

from stopcsam.accounts.models import StaffUser
from stopcsam.chat import appointments, timing
from stopcsam.chat.exceptions import (
    ChatError,
    InvalidMessageError,
    NotAllowedError,
    NoteChangedError,
    SendingTooFastError,
    SessionAlreadyLiveError,
    SessionEndedError,
    SessionErasedError,
    SessionNotLiveError,
    SessionNotOpenError,
    SessionShreddedError,
    fault_summary,
)
from stopcsam.chat.hub import EVERYONE, Event, get_hub
from stopcsam.chat.models import (
    CLOSED_STATES,
    ChatSession,
    ErasedEscalation,
    Escalation,
    RiskLevel,
    Sender,
    SessionNote,
    SessionState,
    message_body_context,
)
from stopcsam.chat.protocol import ENCODER
from stopcsam.core import clock, crypto
from stopcsam.core.audit import audit_record
from stopcsam.core.counters import count_in_window
from stopcsam.core.erasure import forget_deleted

logger = logging.getLogger("stopcsam.chat")
# \Z, not $: "$" also matches before a final newline, and such an id, 65 characters long,
# failed PostgreSQL's column and with it every message of the writer's batch (a review finding).
CLIENT_ID = re.compile(r"\A[A-Za-z0-9_-]{8,64}\Z")
SENDERS = frozenset(Sender.values)  # Sender.values builds a new list on each use
# Control characters other than tab and newline never belong in a chat message, nor do lone
# surrogates: JSON can carry one ("\\ud800"), but no encoding can store it (its encryption
# failed, and took the writer thread with it).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
# Something to see: a character that is neither white space, nor one of Unicode's default
# ignorable characters (zero-width spaces and joiners, bidirectional controls, the byte order
# mark, Hangul fillers, variation selectors, tag characters...), nor a C1 control character,
# nor the blank Braille pattern (U+2800, drawn as nothing).
# A message of those alone showed as an empty bubble (Hangul fillers and variation selectors
# too: a review finding). Searching stops at the first visible character.
VISIBLE = re.compile(
    r"[^\s\x80-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    r"\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


@dataclass(frozen=True)
class StoredMessage:
    seq: int
    sender: str
    client_id: str
    sent_at: datetime | None  # None for a resend: only the number matters then
    created: bool
    token: str  # the ciphertext as stored, carried by the wake-up instead of plaintext


RESYNC: dict[str, Any] = {"t": "resync"}
RECHECK: dict[str, Any] = {"t": "recheck"}  # a socket checks again that it may stay open


def publish_on_commit(session_id: int, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: get_hub().publish(session_id, event))


def sign_in_tags(*, session_key: str = "", staff_id: int = 0) -> list[str]:
    """How a socket's sign-in is named in a ``recheck`` wake-up: a digest of the Django
    session's key (the key itself is a credential, and the wake-up may cross Redis), and the
    member of staff's id."""
    tags = [hashlib.sha256(session_key.encode()).hexdigest()[:32]] if session_key else []
    return tags + ([f"staff-{staff_id}"] if staff_id else [])


def sockets_recheck(*, session_key: str = "", staff_id: int = 0) -> None:
    """After a sign-in ended or changed (a logout, "stop and erase", a deactivated member of
    staff), the sockets open with it, in every process, check it again at once and close
    if it no longer allows them (4403). Without this they closed only at their next safety
    poll, two ticks later. Only a wake-up: each socket re-reads its sign-in from the database."""
    tags = sign_in_tags(session_key=session_key, staff_id=staff_id)
    if tags:
        publish_on_commit(EVERYONE, {**RECHECK, "who": tags})


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
        if "therapist" in changed:  # handed over: the first therapist's sockets close now
            publish_on_commit(session.pk, RECHECK)
        if session.state == SessionState.WAITING and clock.now() < timing.opens_at(session):
            # Moved to a later time while the participant waited: nobody is admitted now to
            # a session they are told is not open (a review finding); they come back then.
            ChatSession.objects.filter(pk=session.pk, state=SessionState.WAITING).update(
                state=SessionState.SCHEDULED, joined_at=None
            )
            session.refresh_from_db()
            publish_on_commit(session.pk, {"t": "state"})
    if appointment.get("missed") and session.state == SessionState.SCHEDULED:
        # A no-show frees the slot (DESIGN §3, step 8): one who comes later is not let in.
        session = session_end(
            session=session, ended_by="missed", actor="system", states=(SessionState.SCHEDULED,)
        )
    return session


def session_sync_confirmed(*, appointment: Mapping[str, Any]) -> ChatSession:
    """``session_sync`` for an appointment that the wired source has just given: from now
    on, the source not knowing it means that it was cancelled (``session_cancel``)."""
    session = session_sync(appointment=appointment)
    if not session.source_confirmed:
        session.source_confirmed = True
        session.save(update_fields=["source_confirmed"])
    return session


def session_as_booked(*, session: ChatSession) -> ChatSession:
    """The session brought in line with its appointment: moved (read again, with its
    therapist and site, who may have changed), or cancelled once the wired source no longer
    knows an appointment it gave before. A session the source never gave (a benchmark's, or
    with no source wired) is left as it is."""
    fresh, gone = appointments.appointment_lookup(appointment_ref=session.appointment_ref)
    if fresh is not None:
        session_sync_confirmed(appointment=fresh)
        # Read again rather than refresh_from_db(), which would drop the related rows that a
        # socket reads on its event loop.
        return ChatSession.objects.select_related("therapist__site").get(pk=session.pk)
    if gone and session.source_confirmed:
        return session_cancel(session=session)
    return session


def session_cancel(*, session: ChatSession) -> ChatSession:
    """The appointment was cancelled: nobody enters or writes any more, and it is never
    attended. Open sockets learn of it as they learn of any change of state."""
    with transaction.atomic():
        updated = (
            ChatSession.objects.filter(pk=session.pk)
            .exclude(state__in=CLOSED_STATES)
            .update(state=SessionState.CANCELLED)
        )
        if updated:
            audit_record(actor="system", action="chat.cancel", subject=session.audit_ref)
            publish_on_commit(session.pk, {"t": "state"})
    session.refresh_from_db()
    return session


def session_enter(*, session: ChatSession, role: str) -> ChatSession:
    """The participant arrives: from now on they wait to be admitted (not a no-show). A
    cancelled session refuses them (``SessionEndedError``)."""
    session_expire_if_due(session=session)
    _refuse_if_cancelled(session)
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
            # In the transaction, not after it: a hook that failed after the commit was never
            # called again (the session was already waiting), and scheduling then marked a
            # participant who was there a no-show (a review finding). Failing here, the entry
            # is rolled back and the next page load or socket enters again.
            appointments.notify_joined(appointment_ref=session.appointment_ref, role=role)
            publish_on_commit(session.pk, {"t": "state"})
    session.refresh_from_db()
    _refuse_if_cancelled(session)  # cancelled while the caller's copy said otherwise
    return session


def _refuse_if_cancelled(session: ChatSession) -> None:
    if session.state == SessionState.CANCELLED:
        raise SessionEndedError


def session_admit(
    *, session: ChatSession, therapist: StaffUser, refuse_repeat: bool = False
) -> ChatSession:
    """Let the waiting participant in. ``refuse_repeat``: an admit of a session already in
    progress is refused (``SessionAlreadyLiveError``) instead of changing nothing quietly, so
    that a socket's frame gets an answer (a review finding: it got none)."""
    if session.therapist_id != therapist.pk:
        raise NotAllowedError
    session_expire_if_due(session=session)  # nobody is admitted after the appointment
    if session.state in CLOSED_STATES:
        raise SessionEndedError
    with transaction.atomic():
        # Its therapist still, in the same statement: the caller's copy (a socket's) may
        # predate a hand-over to another therapist (a review finding).
        updated = ChatSession.objects.filter(
            pk=session.pk, state=SessionState.WAITING, therapist_id=therapist.pk
        ).update(state=SessionState.LIVE, admitted_at=clock.now())
        if updated:
            audit_record(actor=therapist.audit_ref, action="chat.admit", subject=session.audit_ref)
            publish_on_commit(session.pk, {"t": "state"})
    session.refresh_from_db()
    if session.therapist_id != therapist.pk:
        raise NotAllowedError  # handed over meanwhile
    if session.state in CLOSED_STATES:
        raise SessionEndedError  # closed while the caller's copy said otherwise
    if session.state != SessionState.LIVE:
        raise SessionNotOpenError  # nobody is waiting yet
    if refuse_repeat and not updated:
        raise SessionAlreadyLiveError
    return session


def session_end(
    *,
    session: ChatSession,
    ended_by: str,
    actor: str,
    states: tuple[str, ...] = (SessionState.LIVE, SessionState.WAITING),
    refuse_repeat: bool = False,
    therapist: StaffUser | None = None,
) -> ChatSession:
    """End a session in one of ``states`` (the therapist's choice or the timer); idempotent.
    Attended when the participant had been admitted. ``refuse_repeat``: the end of a session
    ended already is refused (``SessionEndedError``), so that a socket's frame gets an
    answer. ``therapist``: only while it is still theirs (``NotAllowedError``), checked in
    the update itself, since the caller's copy may predate a hand-over."""
    mine = {} if therapist is None else {"therapist_id": therapist.pk}
    with transaction.atomic():
        updated = ChatSession.objects.filter(pk=session.pk, state__in=states, **mine).update(
            state=SessionState.ENDED, ended_at=clock.now(), ended_by=ended_by
        )
        # The row as this update left it (and locks): the caller's copy may predate an admit.
        session.refresh_from_db()
        if therapist is not None and session.therapist_id != therapist.pk:
            raise NotAllowedError
        if updated:
            audit_record(
                actor=actor, action="chat.end", subject=session.audit_ref, detail={"by": ended_by}
            )
            publish_on_commit(session.pk, {"t": "state"})
            # In the transaction, as for ``notify_joined``: a failed hook rolls the end back,
            # and the next tick or minute sweep ends it again and tells scheduling then.
            ref = session.appointment_ref
            if session.admitted_at is not None:
                appointments.notify_attended(appointment_ref=ref)
            elif session.joined_at is not None:  # came, and was never let in
                appointments.notify_not_held(appointment_ref=ref)
    if refuse_repeat and not updated and session.state == SessionState.ENDED:
        raise SessionEndedError
    return session


def sessions_expire_due() -> int:
    """End every session past its forced end, whether or not anybody is connected (an
    open socket ends its own at once; this is for sessions everybody left, which would stay
    live and never be counted as attended), and close every session nobody admitted by its
    booked end plus the grace period (a participant left in the waiting room is told it
    ended). Run every minute by the background worker (STOPCSAM_EVERY_MINUTE). How many it
    ended."""
    now, grace = clock.now(), timedelta(seconds=settings.CHAT_GRACE_SECONDS)
    length = timedelta(seconds=settings.CHAT_SESSION_SECONDS) + grace
    live = ChatSession.objects.filter(state=SessionState.LIVE).filter(
        Q(admitted_at__lte=now - length)  # its full length is over
        | Q(admitted_at__gt=F("starts_at"), ends_at__lte=now - grace)  # late: the slot is over
    )
    unadmitted = ChatSession.objects.filter(state__in=UNADMITTED, ends_at__lte=now - grace)
    # An unadmitted session is read as booked now before it is closed: scheduling moves an
    # appointment in place without telling the chat, and one moved to a later day must not
    # be closed at its old time.
    due = [*live, *(session_as_booked(session=session) for session in unadmitted)]
    ended = 0
    for session in due:
        # Scheduling's notice runs in the end's transaction: one that keeps failing rolls
        # that end back on every sweep, and must not hold up the sessions after it.
        try:
            ended += session_expire_if_due(session=session)
        except Exception as fault:
            logger.error("chat sweep: %s; the session ends later", fault_summary(fault))
    return ended


UNADMITTED = (SessionState.SCHEDULED, SessionState.WAITING)


def session_expire_if_due(*, session: ChatSession) -> bool:
    """Force the end once the planned end plus the grace period has passed; close a session
    nobody admitted once its booked end plus the grace period has (not attended)."""
    now = clock.now()
    if session.state in UNADMITTED:
        if now < timing.closes_unadmitted_at(session):
            return False
        session_end(session=session, ended_by="timer", actor="system", states=UNADMITTED)
        return session.state == SessionState.ENDED
    forced = timing.forced_end_at(session)
    if session.state != SessionState.LIVE or forced is None or now < forced:
        return False
    session_end(session=session, ended_by="timer", actor="system")
    return True


# --- messages --------------------------------------------------------------------------------


def message_clean(body: object) -> str:
    if not isinstance(body, str):
        raise InvalidMessageError
    text = CONTROL.sub("", body.replace("\r\n", "\n").replace("\r", "\n"))
    if not VISIBLE.search(text) or len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise InvalidMessageError
    return text


@dataclass(frozen=True)
class SendRequest:
    session_id: int
    sender: str
    client_id: str
    body: object


# Messages posted through the page (without JavaScript) are counted over windows of this
# length against CHAT_SEND_RATE, as the socket counts its sends.
POST_WINDOW_SECONDS = 10


def message_post_spend(*, session: ChatSession, sender: str) -> None:
    """Count one message posted through the page against its sender's flood allowance in the
    session: CHAT_SEND_RATE's burst plus its rate over each window. Counted in the cache,
    which is Redis when scaled out, so one limit holds across processes; a page that keeps
    posting otherwise stored a message per request, at whatever rate a script sends them.
    Raises SendingTooFastError when spent."""
    rate, burst = settings.CHAT_SEND_RATE
    try:
        used, _ = count_in_window(f"chat:posts:{session.public_id}:{sender}", POST_WINDOW_SECONDS)
    except Exception:  # Redis away: the message goes through, as on the socket
        logger.warning("chat: the cache is unreachable; a posted message is not counted")
        return
    if used > burst + rate * POST_WINDOW_SECONDS:
        raise SendingTooFastError()


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
    results: list[StoredMessage | ChatError | SendRequest] = [_validated(r) for r in requests]
    valid = [(i, r) for i, r in enumerate(results) if isinstance(r, SendRequest)]
    if valid:
        now = clock.now()
        tokens = [
            crypto.encrypt(
                str(r.body),
                context=message_body_context(
                    session_id=r.session_id, sender=r.sender, client_id=r.client_id
                ),
            )
            for _, r in valid
        ]
        store = _store_postgresql if connection.vendor == "postgresql" else _store
        numbers = store([r for _, r in valid], tokens, now)
        for (index, request), token, (seq, created) in zip(valid, tokens, numbers, strict=True):
            if seq is None:
                results[index] = _not_live(request.session_id)
            elif created:
                results[index] = StoredMessage(
                    seq, request.sender, request.client_id, now, True, token
                )
            else:
                results[index] = StoredMessage(
                    seq, request.sender, request.client_id, None, False, ""
                )
    # A resend may follow a crash between an earlier commit and its wake-up: wake the session
    # again (receivers fetch from the database what they have not seen).
    events = [
        (request.session_id, _message_event(result) if result.created else RESYNC)
        for request, result in zip(requests, results, strict=True)
        if isinstance(result, StoredMessage)
    ]
    if events:
        transaction.on_commit(lambda: get_hub().publish_many(events))
    return results  # type: ignore[return-value]  # every SendRequest has been answered


def _validated(request: SendRequest) -> SendRequest | ChatError:
    if not CLIENT_ID.match(request.client_id) or request.sender not in SENDERS:
        return InvalidMessageError()
    try:
        return SendRequest(
            request.session_id, request.sender, request.client_id, message_clean(request.body)
        )
    except ChatError as error:
        return error


# What the stores answer for each request, in order: (seq, created), or (None, False) when its
# session is not live. A repeat of a client id within one batch gets the first one's answer.
# Both stores are raw SQL: they run once per batch on the hot path, where compiling ORM
# queries costs more than executing them.
Numbers = list[tuple[int | None, bool]]
Key = tuple[int, str, str]


def _store(requests: list[SendRequest], tokens: list[str], now: datetime) -> Numbers:
    """The portable store (SQLite): number the new messages in one statement, insert them in
    another; one transaction. A resend is rare, so the lookup for client ids stored before
    runs only when the insert meets one, or a session is not live: the batch is then rolled
    back and stored again."""
    try:
        with _sqlite_transaction():
            numbers = _number_and_insert(requests, tokens, now, earlier={})
            if any(seq is None for seq, _ in numbers):
                raise _LookFirstError  # a message to a session that is not live: a resend?
            return numbers
    except (IntegrityError, _LookFirstError):
        with _sqlite_transaction():
            return _number_and_insert(requests, tokens, now, _earlier_messages(requests))


@contextmanager
def _sqlite_transaction() -> Iterator[None]:
    """``transaction.atomic()``; outside any atomic block (the socket writer), the same
    BEGIN IMMEDIATE ... COMMIT on the sqlite3 connection itself, at a fifth of the CPU time
    (14 against 71 us a transaction)."""
    if connection.in_atomic_block:
        with transaction.atomic():
            yield
        return
    connection.ensure_connection()
    raw = connection.connection
    with connection.wrap_database_errors:
        raw.execute("BEGIN IMMEDIATE")
    try:
        yield
        with connection.wrap_database_errors:
            raw.commit()
    except BaseException:
        if raw.in_transaction:
            raw.rollback()
        raise


class _LookFirstError(Exception):
    """Roll the batch back and store it again, looking up client ids stored before."""


def _number_and_insert(
    requests: list[SendRequest], tokens: list[str], now: datetime, earlier: dict[Key, int]
) -> Numbers:
    numbers: list[tuple[int | None, bool] | None] = [None] * len(requests)
    first: dict[Key, int] = {}
    for i, r in enumerate(requests):
        key = (r.session_id, r.sender, r.client_id)
        if key in earlier:
            numbers[i] = (earlier[key], False)
        elif key not in first:
            first[key] = i
    fresh = list(first.values())  # in arrival order: the order within each session
    counts = Counter(requests[i].session_id for i in fresh)
    tops = _allocate(counts) if counts else {}
    next_seq = {session_id: tops[session_id] - counts[session_id] for session_id in tops}
    rows: list[Any] = []
    sent_at = connection.ops.adapt_datetimefield_value(now)
    for i in fresh:
        r = requests[i]
        if r.session_id not in next_seq:
            numbers[i] = (None, False)
            continue
        next_seq[r.session_id] += 1
        numbers[i] = (next_seq[r.session_id], True)
        rows += [r.session_id, next_seq[r.session_id], r.sender, r.client_id, tokens[i], sent_at]
    if rows:
        values = ", ".join([f"({_marks(6)})"] * (len(rows) // 6))
        _sqlite(
            "INSERT INTO chat_chatmessage "  # noqa: S608 (only placeholders)
            f"(session_id, seq, sender, client_id, body, sent_at) VALUES {values}",
            rows,
        )
    answers: Numbers = []
    for i, r in enumerate(requests):
        answer = numbers[i]
        if answer is None:  # a repeat within the batch: the first send's number, not new
            first_answer = numbers[first[(r.session_id, r.sender, r.client_id)]]
            assert first_answer is not None  # every first send was answered above
            answer = (first_answer[0], False)
        answers.append(answer)
    return answers


def _earlier_messages(requests: list[SendRequest]) -> dict[Key, int]:
    """Messages already stored for these client ids: one query for the whole batch."""
    sessions = sorted({r.session_id for r in requests})
    client_ids = sorted({r.client_id for r in requests})
    sql = (
        "SELECT session_id, sender, client_id, seq FROM chat_chatmessage "  # noqa: S608
        f"WHERE session_id IN ({_marks(len(sessions))}) "  # only placeholders
        f"AND client_id IN ({_marks(len(client_ids))})"
    )
    return {
        (sid, sender, cid): seq for sid, sender, cid, seq in _sqlite(sql, [*sessions, *client_ids])
    }


def _marks(count: int) -> str:
    return ", ".join(["?"] * count)


def _sqlite(sql: str, params: list[Any]) -> list[Any]:
    """One statement on the sqlite3 connection itself, inside the store's transaction:
    Django's cursor layers cost more than the statement (bench/chat.py)."""
    with connection.wrap_database_errors:
        return connection.connection.execute(sql, params).fetchall()


def _allocate(counts: Counter[int]) -> dict[int, int]:
    """Add each live session's count to its ``last_seq`` in one statement; return the new
    values. The session rows stay locked until the commit, so numbers are gapless."""
    ids = sorted(counts)
    case = " ".join(["WHEN ? THEN ?"] * len(ids))
    sql = (
        "UPDATE chat_chatsession SET last_seq = last_seq + "  # noqa: S608 (placeholders)
        f"CASE id {case} END WHERE id IN ({_marks(len(ids))}) AND state = ? "
        "RETURNING id, last_seq"
    )
    params = [value for session_id in ids for value in (session_id, counts[session_id])]
    return dict(_sqlite(sql, [*params, *ids, SessionState.LIVE]))


# The same in one statement, so one round trip (and, outside a transaction, its own commit):
# on PostgreSQL each round trip of a batch cost more than its messages (bench/chat.py).
# The session rows are locked in ascending id order, so that the writers of several processes
# never deadlock; ``fresh`` keeps the first send of each client id not stored before.
STORE_POSTGRESQL = """
WITH input AS (
    SELECT * FROM json_to_recordset(%s::json)
        AS t(session_id bigint, sender text, client_id text, body text, ord bigint)
), earlier AS (
    SELECT i.ord, m.seq FROM input i CROSS JOIN LATERAL (
        SELECT seq FROM chat_chatmessage
        WHERE session_id = i.session_id AND sender = i.sender AND client_id = i.client_id
        LIMIT 1
    ) m
), fresh AS (
    SELECT DISTINCT ON (session_id, sender, client_id) * FROM input
    WHERE ord NOT IN (SELECT ord FROM earlier)
    ORDER BY session_id, sender, client_id, ord
), counts AS (
    SELECT session_id, count(*) AS n FROM fresh GROUP BY session_id
), locked AS (
    SELECT id FROM chat_chatsession
    WHERE id = ANY(ARRAY(SELECT session_id FROM counts)) AND state = %s
    ORDER BY id FOR UPDATE
), bumped AS (
    UPDATE chat_chatsession s SET last_seq = s.last_seq + c.n FROM counts c
    WHERE s.id = c.session_id AND s.id IN (SELECT id FROM locked)
    RETURNING s.id, s.last_seq - c.n AS base
), numbered AS (
    SELECT f.*, b.base + row_number() OVER (PARTITION BY f.session_id ORDER BY f.ord) AS seq
    FROM fresh f JOIN bumped b ON b.id = f.session_id
), inserted AS (
    INSERT INTO chat_chatmessage (session_id, seq, sender, client_id, body, sent_at)
    SELECT session_id, seq, sender, client_id, body, %s FROM numbered
)
SELECT coalesce(e.seq, n.seq, f.seq), n.seq IS NOT NULL FROM input i
LEFT JOIN earlier e ON e.ord = i.ord
LEFT JOIN numbered n ON n.ord = i.ord
LEFT JOIN numbered f
    ON f.session_id = i.session_id AND f.sender = i.sender AND f.client_id = i.client_id
ORDER BY i.ord
"""


NEVER_AUTOMATICALLY = 2**31  # a psycopg prepare_threshold that no query reaches


def _store_postgresql(requests: list[SendRequest], tokens: list[str], now: datetime) -> Numbers:
    # The batch goes as one JSON parameter, on a psycopg cursor with server-side binding:
    # Django's client-side binding of four arrays cost the writer more than the statement,
    # and dumping the arrays still cost half again as much as the JSON (same work in the
    # database, bench/chat.py).
    batch = [
        {
            "session_id": r.session_id,
            "sender": r.sender,
            "client_id": r.client_id,
            "body": token,
            "ord": n,
        }
        for n, (r, token) in enumerate(zip(requests, tokens, strict=True), start=1)
    ]
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Django turns psycopg's prepared statements off (for poolers that cannot keep them),
        # and then psycopg ignores prepare=True as well. This statement is prepared on
        # purpose, and nothing else is prepared automatically: parsing and planning it was
        # half of PostgreSQL's CPU time per batch: 1,535-1,579 -> 710-825 us per message
        # at 100 sessions (bench/chat.py). PgBouncer keeps it from 1.21 on.
        raw.prepare_threshold = NEVER_AUTOMATICALLY
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(
            STORE_POSTGRESQL, [ENCODER.encode(batch), SessionState.LIVE, now], prepare=True
        )
        return [(seq, bool(created)) for seq, created in cursor.fetchall()]


def _not_live(session_id: int) -> ChatError:
    """Why a message was not stored: ended, or not live yet. Asked after the batch has been
    stored (on PostgreSQL, committed): a fault here must not turn the stored messages of the
    batch into errors with no wake-up (a review finding), so it answers "not live"."""
    try:
        state = _session_state(session_id)
    except DatabaseError:
        return SessionNotLiveError()
    return SessionEndedError() if state in CLOSED_STATES else SessionNotLiveError()


def _session_state(session_id: int) -> str | None:
    return ChatSession.objects.filter(pk=session_id).values_list("state", flat=True).first()


def _message_event(stored: StoredMessage) -> dict[str, Any]:
    return {
        "t": "msg",
        "seq": stored.seq,
        "sender": stored.sender,
        "cid": stored.client_id,
        "sent_at": stored.sent_at.isoformat() if stored.sent_at else "",
        "ct": stored.token,
    }


@dataclass(frozen=True)
class ReadMark:
    session_id: int
    sender: str  # participant | therapist
    seq: int


# A side's marker moves forward only, and never past the session's last message. One statement
# per side for a whole batch of markers (the socket writer's); on PostgreSQL the session rows
# are locked in ascending id order first, as the message store locks them, so that the writers
# of two processes never deadlock.
READ_MARKS = """
WITH marks(id, seq) AS (VALUES {values}){locked}
UPDATE chat_chatsession SET {column} = marks.seq FROM marks
WHERE chat_chatsession.id = marks.id{only_locked}
    AND marks.seq > {column} AND marks.seq <= last_seq
RETURNING chat_chatsession.id, {column}
"""
READ_MARKS_LOCK = """, locked AS MATERIALIZED (
    SELECT id FROM chat_chatsession WHERE id IN (SELECT id FROM marks) ORDER BY id FOR UPDATE)"""
READ_COLUMNS = {Sender.PARTICIPANT: "participant_read_seq", Sender.THERAPIST: "therapist_read_seq"}


def read_marks(*, marks: list[ReadMark]) -> None:
    """Record how far each side has read; tell the other side after the commit. A marker
    that moves nothing (old, or past the last message) is dropped without a word."""
    postgresql = connection.vendor == "postgresql"
    # On SQLite both sides' statements are one transaction: a commit each wrote most of the
    # session rows' pages to the log twice (a flush of 400 markers among 2,000 sessions: 1.7-1.9
    # against 2.4-2.7 ms of CPU). PostgreSQL keeps a commit per statement: each statement locks
    # its rows in id order, and a transaction holding the first set while it locked the second
    # could deadlock with another process's writer.
    with nullcontext() if postgresql else _sqlite_transaction():
        events = _read_marks_stored(marks, postgresql)
    if events:
        transaction.on_commit(lambda: get_hub().publish_many(events))


def _read_marks_stored(marks: list[ReadMark], postgresql: bool) -> list[tuple[int, Event]]:
    events = []
    for sender, column in READ_COLUMNS.items():
        top: dict[int, int] = {}
        for mark in marks:
            if mark.sender == sender:
                top[mark.session_id] = max(top.get(mark.session_id, 0), mark.seq)
        if not top:
            continue
        sql = READ_MARKS.format(
            values=", ".join(["(%s, %s)"] * len(top)),
            column=column,
            locked=READ_MARKS_LOCK if postgresql else "",
            only_locked=" AND chat_chatsession.id IN (SELECT id FROM locked)" if postgresql else "",
        )
        # One statement: in autocommit (the socket writer) it has committed once its rows are
        # fetched, and ``on_commit`` below publishes at once; no transaction block is needed.
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for pair in top.items() for value in pair])
            moved = cursor.fetchall()
        events += [(pk, {"t": "read", "sender": sender.value, "seq": seq}) for pk, seq in moved]
    return events


# --- after the session -------------------------------------------------------------------------


def feedback_record(*, session: ChatSession, rating: int) -> None:
    """The participant's one answer to the feedback question, for a session that took place
    (ended after an admission). A second answer (the form sent twice, another tab) leaves the
    first one as it was."""
    if session.state != SessionState.ENDED or session.admitted_at is None:
        raise SessionNotLiveError
    if rating not in range(1, 6):
        raise InvalidMessageError
    ChatSession.objects.filter(pk=session.pk, feedback__isnull=True).update(feedback=rating)


def note_version(note: SessionNote | None) -> str:
    """Which saved version of a session's notes a form was filled from ("" for none yet)."""
    return note.updated_at.isoformat() if note is not None else ""


def note_save(
    *,
    session: ChatSession,
    author: StaffUser,
    body: str,
    risk_level: str,
    risk_notes: str,
    seen: str | None = None,
) -> SessionNote:
    """Save the session's notes. With ``seen`` (``note_version`` of the notes the form was
    filled from), notes saved since then with other content are not overwritten
    (NoteChangedError): the console in a second tab, or a form sent again from the
    browser's history, replaced a later risk assessment without a word (a review finding).
    The same content again (a double submit) is no conflict."""
    if session.therapist_id != author.pk:
        raise NotAllowedError
    if risk_level and risk_level not in RiskLevel.values:
        raise InvalidMessageError
    with transaction.atomic():
        _lock_unshredded(session)  # under the lock: a save in another tab waits, then is seen
        saved = SessionNote.objects.filter(session=session).first()
        if (
            seen is not None
            and note_version(saved) != seen
            and saved is not None
            and (saved.body, saved.risk_level, saved.risk_notes) != (body, risk_level, risk_notes)
        ):
            raise NoteChangedError(saved)
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
        # No clinical content in the audit log, which outlives the note (retention).
        audit_record(actor=author.audit_ref, action="chat.note_saved", subject=session.audit_ref)
    return note


def escalation_raise(*, session: ChatSession, raised_by: StaffUser, reason: str) -> Escalation:
    """Ask a supervisor to look at the session. The same reason again while it is open (a
    double submit) is the same escalation."""
    if session.therapist_id != raised_by.pk:
        raise NotAllowedError
    with transaction.atomic():
        _lock_unshredded(session)
        for open_one in session.escalations.filter(raised_by=raised_by, resolved_at__isnull=True):
            if open_one.reason == reason:
                return open_one
        escalation = Escalation.objects.create(
            session=session, raised_by=raised_by, reason=reason, raised_at=clock.now()
        )
        audit_record(actor=raised_by.audit_ref, action="chat.escalate", subject=session.audit_ref)
    return escalation


def _lock_unshredded(session: ChatSession) -> None:
    """Lock the session's row for the rest of the transaction, and refuse a session whose
    transcript retention has deleted: a note or escalation stored then would outlive every
    later run of it. Checked under the lock, so a shred that commits meanwhile is seen (a
    review finding: checked before the transaction, a note saved during the shred stayed).
    A session erased with its participant meanwhile is refused too: a row stored for it
    failed at commit."""
    found = _lock_session(session)
    if found is None:
        raise SessionErasedError
    if found[0] is not None:
        raise SessionShreddedError


def _lock_session(session: ChatSession) -> tuple[datetime | None] | None:
    """Lock the session's row until the transaction ends; return (when it was shredded,),
    or None when the row is gone (erased)."""
    return (
        ChatSession.objects.select_for_update()
        .filter(pk=session.pk)
        .values_list("shredded_at")
        .first()
    )


def escalation_resolve(*, escalation: Escalation, supervisor: StaffUser) -> None:
    with transaction.atomic():
        updated = Escalation.objects.filter(pk=escalation.pk, resolved_at__isnull=True).update(
            resolved_at=clock.now()
        )
        if not updated:  # handled meanwhile (a double click, another supervisor): audited then
            return
        audit_record(
            actor=supervisor.audit_ref,
            action="chat.escalation_resolved",
            subject=escalation.session.audit_ref,
        )
        # A supervisor reading through the escalation stops at once, not at the next safety
        # poll (a review finding): the session's sockets check their access again.
        publish_on_commit(escalation.session_id, RECHECK)


def session_erasing(*, session: ChatSession) -> None:
    """The session is being erased with its participant, in the erasure's transaction,
    before its row goes. Each open escalation leaves an ``ErasedEscalation`` (who raised it,
    when) for the supervisors it reached: it vanished from their list unexplained, while they
    might still have meant to act on it (a risk the therapist raised).

    The row is locked first, as notes and escalations lock it before they are stored: one
    raised meanwhile waits and then finds the session gone (on PostgreSQL it was stored after
    this read, and went with the session without its record)."""
    if _lock_session(session) is None:
        return  # erased already
    _escalations_leave_record(session, cause=ErasedEscalation.Cause.ERASURE)


def _escalations_leave_record(session: ChatSession, *, cause: str) -> None:
    """The session's open escalations are about to be deleted (erasure, retention): each
    leaves an ``ErasedEscalation`` (who raised it, when, why it went). Called under the
    session's lock, which an escalation takes before it is stored."""
    now = clock.now()
    ErasedEscalation.objects.bulk_create(
        ErasedEscalation(raised_by_id=raised_by_id, raised_at=raised_at, erased_at=now, cause=cause)
        for raised_by_id, raised_at in Escalation.objects.filter(
            session_id=session.pk, resolved_at__isnull=True
        ).values_list("raised_by_id", "raised_at")
    )


def erased_escalation_dismiss(*, erased: ErasedEscalation, supervisor: StaffUser) -> None:
    """A supervisor has taken note that an escalation went with its participant's data: the
    record of it goes too; the audit log keeps that it was handled, and by whom."""
    with transaction.atomic():
        deleted, _ = ErasedEscalation.objects.filter(pk=erased.pk).delete()
        if deleted:
            audit_record(
                actor=supervisor.audit_ref,
                action="chat.erased_escalation_handled",
                subject=erased.raised_by.audit_ref,
            )


def session_shred(*, session: ChatSession, actor: str) -> None:
    """Delete the transcript, notes and escalations of a session (retention). The session's
    row is locked first, as a note or an escalation locks it first: one saved meanwhile waits
    and then sees the shred (a review finding: locked last, a note inserted after the notes
    were deleted outlived retention, and the two orders could deadlock). An open escalation
    leaves its record for the supervisors it reached, as on erasure: it vanished from their
    list unexplained (a review finding)."""
    with transaction.atomic():
        _lock_session(session)
        _escalations_leave_record(session, cause=ErasedEscalation.Cause.RETENTION)
        _delete_content(session)
        ChatSession.objects.filter(pk=session.pk).update(shredded_at=clock.now())
        audit_record(actor=actor, action="chat.shred", subject=session.audit_ref)
        forget_deleted()


def _delete_content(session: ChatSession) -> None:
    session.messages.all().delete()
    SessionNote.objects.filter(session=session).delete()
    session.escalations.all().delete()


def sessions_shred_expired(*, dry_run: bool = False) -> int:
    """Shred every session of participants whose retention clock has run out.

    The clock starts at the later of the end of their last session and the close of their
    last study time point (the STOPCSAM_LAST_TIME_POINTS hook). A few queries per batch of
    participants, never one per session to select them.
    """
    from django.db.models import Count, Max

    now = clock.now()
    cutoff = now - timedelta(days=settings.CHAT_RETENTION_DAYS)
    still_open = now - timedelta(seconds=settings.CHAT_GRACE_SECONDS)
    # Only a last session before the cut-off can let the later of the two be before it.
    candidates = list(
        ChatSession.objects.values("participant_id")
        .annotate(last=Max("ends_at"), left=Count("pk", filter=Q(shredded_at__isnull=True)))
        .filter(last__lt=cutoff, left__gt=0)
        .values_list("participant_id", flat=True)
    )
    count = 0
    for start in range(0, len(candidates), 500):  # batches stay under SQLite's variable limit
        expired = _past_last_time_point(candidates[start : start + 500], cutoff)
        # Never a session that may still be in progress (before its forced end).
        due = ChatSession.objects.filter(
            participant_id__in=expired, shredded_at__isnull=True
        ).exclude(state__in=(SessionState.WAITING, SessionState.LIVE), ends_at__gte=still_open)
        if dry_run:
            count += due.count()
            continue
        for session in due.iterator():
            session_shred(session=session, actor="system:retention")
            count += 1
    if not dry_run:
        # What is left of an escalation erased with its participant goes after as long, handled
        # or not (with no supervisor at all, nobody would ever mark it as handled).
        ErasedEscalation.objects.filter(erased_at__lt=cutoff).delete()
    return count


def _past_last_time_point(participant_ids: list[int], cutoff: datetime) -> list[int]:
    """Those whose last study time point closed before ``cutoff``, or who have none (no
    enrolment: their last session is the clock). An undated one means still in the study."""
    from django.utils.module_loading import import_string

    hook = settings.STOPCSAM_LAST_TIME_POINTS
    if not hook:
        return participant_ids
    closes = import_string(hook)(participant_ids=participant_ids)
    return [
        pid
        for pid in participant_ids
        if pid not in closes or (closes[pid] is not None and closes[pid] < cutoff)
    ]
