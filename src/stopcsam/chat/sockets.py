"""The lean ASGI websocket endpoint of the chat: ``/ws/chat/<public id>?lang=xx``.

Thin on purpose: check the Origin, authenticate from the Django session cookie, check access
through a selector, then validate each frame against its schema and call a service. Fan-out
events from the hub only wake the connection; the messages it sends come from the database
or carry the stored ciphertext (see docs/chat-protocol.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from importlib import import_module
from types import SimpleNamespace
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.auth import get_user
from django.db import DatabaseError, connection
from django.http.cookie import parse_cookie
from django.http.request import validate_host
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from stopcsam.accounts.models import Participant, StaffUser
from stopcsam.accounts.sessions import SESSION_KEY
from stopcsam.chat import selectors, services, timing
from stopcsam.chat.exceptions import (
    ChatError,
    NotAllowedError,
    SessionNotLiveError,
    fault_summary,
)
from stopcsam.chat.hub import EVERYONE, get_hub
from stopcsam.chat.models import ChatSession, Sender, SessionState, message_body_context
from stopcsam.chat.protocol import CLIENT_ID_IN_TEXT, FrameError, encode, parse_client_frame
from stopcsam.chat.writer import get_readers, get_writer
from stopcsam.core import clock, crypto

logger = logging.getLogger("stopcsam.chat.sockets")
PATH = re.compile(r"^/ws/chat/([A-Za-z0-9_-]{8,32})/?$")
SESSION_KEY_SHAPE = re.compile(r"^[a-z0-9]{8,64}$")  # Django's session keys
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_FLOOD = 1008
CLOSE_INTERNAL = 1011
# A person with more than MAX_DROPPED frames refused for the rate, not yet forgotten, is
# closed (1008). Refusals are forgotten at DROPPED_FORGOTTEN_PER_SECOND: counted for good, a
# client on a poor line that resends what it kept after each outage was closed in the end
# (a review finding).
MAX_DROPPED = 50
DROPPED_FORGOTTEN_PER_SECOND = 1.0
# One person's open sockets in one session (per process: nginx sends a person's sockets to one
# process). Each costs memory, a tick task, a database poll every SAFETY_POLL_TICKS ticks and
# a place in every wake-up of the session; a few tabs are plenty (a review finding: one
# sign-in held any number).
MAX_SOCKETS_PER_PERSON = 8
# Messages a person's hellos replay in a session: a burst, then this many a second; a hello
# beyond that waits its turn (a review finding: a hello replaying 3,000 messages cost 0.11 s
# of CPU, and ten hellos a second were allowed, in each of the person's sessions).
REPLAY_RATE = (1000.0, 5000)
SAFETY_POLL_TICKS = 2
T = TypeVar("T")

Scope = MutableMapping[str, Any]
Send = Callable[[dict[str, Any]], Any]


async def in_thread[T](fn: Callable[..., T], /, **kwargs: Any) -> T:
    def call() -> T:
        try:
            return fn(**kwargs)
        except DatabaseError:
            connection.close()  # reopened by the next call on this thread
            raise

    return await asyncio.get_running_loop().run_in_executor(get_readers(), call)


# --- handshake -------------------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


def origin_allowed(scope: Scope) -> bool:
    """Refuse cross-site websocket hijacking: the page must come from this site."""
    origin = _header(scope, b"origin")
    if not origin:
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parts = urlsplit(origin)
    host = _header(scope, b"host")
    return (
        parts.scheme in ("http", "https")
        and parts.netloc == host
        and validate_host(parts.hostname or "", settings.ALLOWED_HOSTS)
    )


@dataclass
class Peer:
    session: ChatSession
    role: str  # participant | therapist | read_along
    actor: str
    language: str
    session_key: str = ""  # the Django session behind the socket
    person: int = 0  # the participant's id, or the member of staff's
    # How a member of staff may see the session (selectors: therapist, read_along or
    # escalated), for the audit of their reads: an escalated read is read-only like reading
    # along, but it is not the read-along the participant is told of.
    access: str = ""


def _session_store(session_key: str) -> Any:
    """The Django session with this key, through the configured engine (which tells the
    other apps when a session ends)."""
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


def authenticate(*, cookie: str, public_id: str) -> Peer | None:
    """Who holds this Django session, and may they join this chat session?"""
    # Django's own parser, as for a page: one malformed cookie of another name does not
    # lose the session's (SimpleCookie dropped them all).
    key = parse_cookie(cookie).get(settings.SESSION_COOKIE_NAME)
    if not key or not SESSION_KEY_SHAPE.match(key):  # a NUL was an error on PostgreSQL
        return None
    store = _session_store(key)
    try:
        participant_id = store.get(SESSION_KEY)
        if isinstance(participant_id, int):
            peer = _participant_peer(participant_id, public_id)
        else:
            peer = _staff_peer(store, public_id)
    except ChatError:
        return None
    if peer is not None:
        peer.session_key = key
    return peer


def still_allowed(peer: Peer) -> ChatSession | None:
    """The session as its appointment now stands, if the socket may stay open; None if it
    must close (4403). The same checks as at the handshake: the Django session behind the
    socket still signed in as the same person, and that person still let into this session in
    the same role. So a logout, an expired session, "stop and erase", a deactivated account or
    a withdrawn one-time-code device, an appointment handed over to another therapist, a
    supervisor moved to another site or no longer a supervisor, and a site no longer reading
    along all close it. Run by each safety poll, and at once on a ``recheck`` wake-up."""
    store = _session_store(peer.session_key)
    public_id = peer.session.public_id
    try:
        if peer.role == Sender.PARTICIPANT:
            if store.get(SESSION_KEY) != peer.person:
                return None
            participant = Participant.objects.filter(pk=peer.person).first()
            if participant is None:
                return None
            return selectors.session_for_participant(participant=participant, public_id=public_id)
        user = _verified_staff(store)
        if user is None or user.pk != peer.person:
            return None
        session, access = selectors.session_for_staff(user=user, public_id=public_id)
    except ChatError:
        return None
    if _staff_role(access) != peer.role:
        return None
    peer.access = access  # an escalation handled where the site reads along: read along now
    return session


def _participant_peer(participant_id: int, public_id: str) -> Peer | None:
    participant = Participant.objects.filter(pk=participant_id).first()
    if participant is None:
        return None
    session = selectors.session_for_participant(participant=participant, public_id=public_id)
    session = services.session_enter(session=session, role=Sender.PARTICIPANT)
    return Peer(
        session, Sender.PARTICIPANT, participant.audit_ref, session.language, person=participant.pk
    )


def _staff_peer(store: Any, public_id: str) -> Peer | None:
    user = _verified_staff(store)
    if user is None:
        return None
    session, access = selectors.session_for_staff(user=user, public_id=public_id)
    services.session_expire_if_due(session=session)
    role = _staff_role(access)
    return Peer(session, role, user.audit_ref, session.language, person=user.pk, access=access)


def _verified_staff(store: Any) -> StaffUser | None:
    """The active member of staff signed in with this Django session, with password and a
    confirmed one-time-code device: a password alone never reaches a transcript."""
    user = get_user(SimpleNamespace(session=store))  # type: ignore[arg-type]
    if not isinstance(user, StaffUser) or not user.is_active:
        return None
    device = Device.from_persistent_id(store.get(DEVICE_ID_SESSION_KEY) or "")
    if device is None or device.user_id != user.pk or not device.confirmed:
        return None
    return user


def _staff_role(access: str) -> str:
    return Sender.THERAPIST if access == selectors.THERAPIST else "read_along"


async def application(scope: Scope, receive: Any, send: Send) -> None:
    event = await receive()
    if event["type"] != "websocket.connect":
        return
    match = PATH.match(scope.get("path", ""))
    if match is None:
        await send({"type": "websocket.close", "code": CLOSE_NOT_FOUND})
        return
    if not origin_allowed(scope):
        await send({"type": "websocket.close", "code": CLOSE_FORBIDDEN})
        return
    cookie = _header(scope, b"cookie")
    peer = await in_thread(authenticate, cookie=cookie, public_id=match.group(1))
    if peer is None:
        await send({"type": "websocket.close", "code": CLOSE_FORBIDDEN})
        return
    # Not UTF-8 (a crafted client): replaced, not an exception after the sign-in was checked.
    query = parse_qs(scope.get("query_string", b"").decode("utf-8", "replace"))
    language = query.get("lang", [peer.language])[0]
    if language in dict(settings.LANGUAGES):
        peer.language = language
    if _sockets_open(peer) >= MAX_SOCKETS_PER_PERSON:
        await send({"type": "websocket.close", "code": CLOSE_FLOOD})
        return
    connection = Connection(peer, send)  # counted now: no await between the check and this
    try:
        await send({"type": "websocket.accept"})
    except BaseException:
        allowance_leave(peer, connection.allowance)
        raise
    await connection.run(receive)


def _sockets_open(peer: Peer) -> int:
    found = _allowances.get((peer.session.pk, peer.role, peer.person))
    return found.sockets if found is not None else 0


# --- one open connection ---------------------------------------------------------------------


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def charge(self, cost: float) -> float:
        """Take ``cost`` tokens, into debt if need be; the seconds until the debt is paid."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= cost
        return max(0.0, -self.tokens / self.rate)


@dataclass
class Allowance:
    """One person's flood allowance in a session, shared by every socket of theirs in this
    process: a second tab, or a hundred, does not multiply the rate. It outlives their last
    socket until its buckets would be full again, so that closing and opening a socket does
    not refill it (a review finding: five reconnects stored 50 messages in 3 s)."""

    frames: TokenBucket
    sends: TokenBucket
    sockets: int = 0
    dropped: float = 0.0  # frames refused for the rate and not yet forgotten
    dropped_at: float = 0.0  # when the last was refused (time.monotonic)
    left_at: float | None = None  # when the last socket closed (time.monotonic)
    replays: TokenBucket = field(default_factory=lambda: TokenBucket(*REPLAY_RATE))

    def refused(self, now: float) -> bool:
        """Count a frame refused for the rate; True for a flood: more than MAX_DROPPED
        refusals not yet forgotten."""
        forgotten = (now - self.dropped_at) * DROPPED_FORGOTTEN_PER_SECOND
        self.dropped = max(0.0, self.dropped - forgotten) + 1
        self.dropped_at = now
        return self.dropped > MAX_DROPPED


_allowances: dict[tuple[int, str, int], Allowance] = {}


def allowance_take(peer: Peer) -> Allowance:
    _allowances_sweep()
    key = (peer.session.pk, peer.role, peer.person)
    found = _allowances.get(key)
    if found is None:
        found = _allowances[key] = Allowance(
            TokenBucket(*settings.CHAT_FRAME_RATE), TokenBucket(*settings.CHAT_SEND_RATE)
        )
    found.sockets += 1
    found.left_at = None
    return found


def allowance_leave(peer: Peer, allowance: Allowance) -> None:
    allowance.sockets -= 1
    if allowance.sockets == 0:
        allowance.left_at = time.monotonic()


_swept = [0.0]  # when the allowances were last swept (time.monotonic)


def _allowances_sweep(*, force: bool = False) -> None:
    """Forget the allowances of people with no socket whose buckets have refilled: keeping
    them longer would change nothing. At most once per refill time: on every connection it
    would walk every allowance, 4,000 times over when 2,000 sessions connect."""
    now = time.monotonic()
    frame_rate, frame_burst = settings.CHAT_FRAME_RATE
    send_rate, send_burst = settings.CHAT_SEND_RATE
    full_after = max(
        frame_burst / frame_rate, send_burst / send_rate, REPLAY_RATE[1] / REPLAY_RATE[0]
    )
    if not force and now - _swept[0] < full_after:
        return
    _swept[0] = now
    for key, allowance in list(_allowances.items()):
        if allowance.left_at is not None and now - allowance.left_at > full_after:
            del _allowances[key]


class Connection:
    def __init__(self, peer: Peer, send: Send) -> None:
        self.peer = peer
        self.session = peer.session
        self.send = send
        self.inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        # One turn at a time at this socket and its state: the run task's for what comes
        # through the inbox, the reading task's for what the client sends.
        self.turn = asyncio.Lock()
        self.delivered: int | None = None  # None until the client said hello
        self.read_up_to = 0  # the last read marker passed on
        self.read_told = 0  # how far the other side has read, as this client was told
        self.read_news = 0  # a newer marker of the other side's, not told yet (0: none)
        self.read_timer: asyncio.TimerHandle | None = None
        self.awaiting: dict[int, services.StoredMessage] = {}  # acks behind earlier messages
        self.storing: set[str] = set()  # client ids of this client's sends being stored
        self.warned = False
        self.allowance = allowance_take(peer)
        self.frames, self.sends = self.allowance.frames, self.allowance.sends
        self.open = True
        self.ticks = 0
        self.typing_shown = False  # the other side was told this client is typing
        staff_id = 0 if peer.role == Sender.PARTICIPANT else peer.person
        self.sign_ins = services.sign_in_tags(session_key=peer.session_key, staff_id=staff_id)

    def wake(self, event: dict[str, Any]) -> None:
        kind = event.get("t")
        if kind == "read" and self.peer.role != "read_along":
            if event.get("sender") != self.peer.role:
                self.hold_read(event["seq"])
            return
        if kind == "msg" and self.answers(event):
            return
        if kind == "typing" and event.get("sender") == self.peer.role:
            return  # its own side's typing: handle_event would skip it, after a wake of the task
        self.inbox.put_nowait(("hub", event))

    def answers(self, event: dict[str, Any]) -> bool:
        """Is this the wake-up of this client's own send, next in line, which its ``ack``
        answers in place? Then the run task is not woken for it: it would wait for the turn
        that the send holds, only to find the message delivered (bench/chat.py). With anything
        queued ahead, the wake-up keeps its place in line."""
        return (
            event.get("cid") in self.storing
            and event.get("sender") == self.peer.role
            and self.delivered is not None
            and event["seq"] == self.delivered + 1
            and self.inbox.empty()
        )

    # --- the other side's read markers ----------------------------------------------------------

    def hold_read(self, seq: int) -> None:
        """Keep the other side's new marker for the next ack or message to this client, or
        send it on its own once CHAT_READ_HOLD_SECONDS have passed. A ``read`` frame of its
        own for every message, and the wake of this connection's task for it, cost a third
        of the CPU time per message (bench/chat.py: 310-345 us at 2,000 sessions, 206 without
        markers) and made p99 (21-46 ms, 8 ms without): a writer's flush of markers woke
        hundreds of connections at once. The hub calls this on the event loop, and holding a
        marker wakes nobody."""
        if seq <= max(self.read_told, self.read_news):
            return
        self.read_news = seq
        if self.read_timer is None:
            self.read_timer = asyncio.get_running_loop().call_later(
                settings.CHAT_READ_HOLD_SECONDS, self.read_due
            )

    def read_due(self) -> None:
        self.read_timer = None
        if self.read_news:
            self.inbox.put_nowait(("read", None))

    def take_read(self) -> int | None:
        """The other side's marker not told yet, for the frame that goes out now."""
        if not self.read_news:
            return None
        seq, self.read_news, self.read_told = self.read_news, 0, self.read_news
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None
        return seq

    async def write_read(self) -> None:
        seq = self.take_read()
        if seq is not None:
            other = Sender.THERAPIST if self.peer.role == Sender.PARTICIPANT else Sender.PARTICIPANT
            await self.write(encode("read", sender=other, seq=seq))

    async def run(self, receive: Any) -> None:
        hub = get_hub()
        await hub.subscribe(self.session.pk, self.wake)
        await hub.subscribe(EVERYONE, _recheck)  # once per process: a set keeps one
        for tag in self.sign_ins:
            _signed_in.setdefault(tag, set()).add(self)
        tasks: list[asyncio.Task[None]] = []
        try:
            # Read again now that wake-ups reach this socket: a logout, an admit or an end
            # between the handshake's read and the subscription woke nobody (a review
            # finding: a participant could stay in the waiting room for the whole session).
            fresh = await in_thread(still_allowed, peer=self.peer)
            if fresh is None:
                await self.send({"type": "websocket.close", "code": CLOSE_FORBIDDEN})
                return
            self.session = fresh
            await self.emit_state()  # before any frame of the client's is answered
            tasks += [
                asyncio.create_task(self.read_frames(receive)),
                asyncio.create_task(self.tick()),
            ]
            while self.open:
                kind, item = await self.inbox.get()
                async with self.turn:
                    try:
                        await self.handle(kind, item)
                    except Exception as fault:  # as in read_frames: close, never stay deaf
                        if kind == "failed":
                            break  # not even the close went out: the socket is gone
                        self.fail(fault)
        finally:
            for task in tasks:
                task.cancel()
            if self.read_timer is not None:
                self.read_timer.cancel()
            allowance_leave(self.peer, self.allowance)
            if self.typing_shown:  # gone mid-sentence: the other side stops showing it
                self.typing(False)
            for tag in self.sign_ins:
                found = _signed_in.get(tag)
                if found is not None:
                    found.discard(self)
                    if not found:
                        del _signed_in[tag]
            await hub.unsubscribe(self.session.pk, self.wake)

    async def read_frames(self, receive: Any) -> None:
        """The client's frames are handled here, in order, each in this connection's turn;
        the next is read once one is answered. Handing them to the run task through the inbox
        woke a second task per message (bench/chat.py: 3% less CPU per message at 1,000
        sessions, p50 10 against 14 ms)."""
        try:
            while True:
                event = await receive()
                if event["type"] == "websocket.disconnect":
                    self.inbox.put_nowait(("closed", None))
                    return
                work = self.take_frame(event.get("text"))
                if work is not None:
                    async with self.turn:
                        await self.handle(*work)
        except Exception as fault:  # a fault of ours; the client reconnects and catches up
            self.fail(fault)

    def take_frame(self, text: str | None) -> tuple[str, Any] | None:
        """What a frame asks of this socket, or None when it asks nothing of it: read markers
        and typing indicators write nothing here and are passed on at once. A browser marks
        each message it shows as read, so that is a frame per message (bench/chat.py)."""
        if not self.frames.take():  # first: binary frames count too (a review finding)
            # A refused send names its message, so that the client sends that one again, not
            # every message it has in flight (found in the text; the frame is not parsed).
            found = CLIENT_ID_IN_TEXT.search(text) if text else None
            return ("refused", FrameError("rate_limited", found.group(1) if found else None))
        if text is None:
            return ("error", "text_only")
        try:
            frame = parse_client_frame(text)
        except FrameError as fault:
            return ("refused", fault)
        if frame["type"] == "read":
            self.mark_read(frame["seq"])
        elif frame["type"] == "typing":
            self.typing(frame["active"])
        else:
            return ("frame", frame)
        return None

    async def tick(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.next_tick_in())
                self.inbox.put_nowait(("tick", None))
        except Exception as fault:
            self.fail(fault)

    def fail(self, fault: Exception) -> None:
        """A task of this connection met a fault of ours: close the socket (1011) rather than
        leave it open and deaf. The client reconnects and catches up from the database. The
        log names the fault's kind and place, never its text, which may quote a message."""
        logger.error("chat socket: %s; the connection closes", fault_summary(fault))
        self.inbox.put_nowait(("failed", None))

    def next_tick_in(self) -> float:
        left = timing.remaining_seconds(self.session, clock.now())
        if left is None or self.session.state != SessionState.LIVE:
            return float(settings.CHAT_TICK_SECONDS)
        # Wake exactly at the warning and at the forced end, and at least every tick.
        marks = [left - settings.CHAT_WARNING_SECONDS, left + settings.CHAT_GRACE_SECONDS]
        soon = [mark for mark in marks if mark > 0]
        return max(0.2, min([float(settings.CHAT_TICK_SECONDS), *[m + 0.05 for m in soon]]))

    async def handle(self, kind: str, item: Any) -> None:
        if kind == "closed":
            self.open = False
        elif kind == "frame":
            await self.handle_frame(item)
        elif kind == "hub":
            await self.handle_event(item)
        elif kind == "tick":
            await self.handle_tick()
        elif kind == "ack":
            await self.ack_in_line(item)
        elif kind == "read":
            await self.write_read()
        elif kind == "error":
            await self.refuse(item)
        elif kind == "refused":
            await self.refuse(item.code, client_id=item.client_id)
        elif kind == "failed":
            await self.send({"type": "websocket.close", "code": CLOSE_INTERNAL})
            self.open = False

    async def write(self, text: str) -> None:
        try:
            await self.send({"type": "websocket.send", "text": text})
        except Exception:
            self.open = False
            # Not sent, but the socket may still be there (a frame it could not encode): it
            # closes properly, and the client reconnects, instead of losing the connection
            # without a close (1006).
            with contextlib.suppress(Exception):
                await self.send({"type": "websocket.close", "code": CLOSE_INTERNAL})

    async def refuse(
        self, code: str, error: ChatError | None = None, client_id: Any = None
    ) -> None:
        if code == "rate_limited" and self.allowance.refused(time.monotonic()):
            await self.send({"type": "websocket.close", "code": CLOSE_FLOOD})
            self.open = False
            return
        with translation.override(self.peer.language):
            message = str(error.message if error else ERROR_MESSAGES[code])
        # Only an id of the right shape is echoed: a lone surrogate in it could not be sent.
        valid = isinstance(client_id, str) and services.CLIENT_ID.match(client_id)
        cid = client_id if valid else None
        await self.write(encode("error", code=code, message=message, client_id=cid))

    # --- client frames ------------------------------------------------------------------------

    async def handle_frame(self, frame: dict[str, Any]) -> None:
        handler = getattr(self, f"on_{frame['type']}")
        try:
            await handler(frame)
        except ChatError as error:
            await self.refuse(error.code, error, frame.get("client_id"))

    async def on_hello(self, frame: dict[str, Any]) -> None:
        fresh = await in_thread(_reload, pk=self.session.pk)
        changed = _shown_state(fresh) != _shown_state(self.session)
        self.session = fresh
        if changed:  # the client learns of it here: the safety poll compares with this copy
            await self.emit_state()
        self.delivered = min(frame["after"], self.session.last_seq)
        wait = self.allowance.replays.charge(self.session.last_seq - self.delivered)
        if wait:
            await asyncio.sleep(wait)
            # The wait held this connection's turn, and with it a recheck of the sign-in
            # that came meanwhile (a logout): the replay went out before the close (a review
            # finding). Checked again here, only after a wait.
            if await in_thread(still_allowed, peer=self.peer) is None:
                await self.send({"type": "websocket.close", "code": CLOSE_FORBIDDEN})
                self.open = False
                return
        if self.peer.role != Sender.PARTICIPANT:
            await in_thread(
                selectors.staff_hello_audit,
                actor=self.peer.actor,
                session_key=self.peer.session_key,
                session=self.session,
                role=self.peer.role,
                access=self.peer.access,
                after=self.delivered,
            )
        await self.catch_up()
        await self.write(encode("caught_up", seq=self.delivered))

    async def on_send(self, frame: dict[str, Any]) -> None:
        if self.peer.role == "read_along":
            raise NotAllowedError
        if not self.sends.take():
            await self.refuse("rate_limited", client_id=frame["client_id"])
            return
        self.storing.add(frame["client_id"])
        try:
            stored = await get_writer().store(
                session_id=self.session.pk,
                sender=self.peer.role,
                client_id=frame["client_id"],
                body=frame["body"],
            )
        finally:
            self.storing.discard(frame["client_id"])
        await self.answer(stored)

    async def answer(self, stored: services.StoredMessage) -> None:
        """The sender learns of its own new message from the ack, not from an echo: one frame
        fewer per message (bench/chat.py). An ack never overtakes an earlier message. When
        this connection has not sent the messages before it yet, their wake-ups are already
        queued here (they were published before this send was answered), so the ack waits
        in line behind them and goes out in its message's place. A resend not yet delivered
        here comes from the database, as a message, before its ack."""
        if self.delivered is None or stored.seq <= self.delivered:
            await self.write_ack(stored)
        elif stored.created and stored.seq == self.delivered + 1:
            self.delivered = stored.seq  # its wake-up is skipped here
            await self.write_ack(stored)
        elif stored.created:
            # Fetching the gap from the database instead cost a query per message once
            # latency let two sides' messages cross, which raised latency further: an
            # overloaded server spiralled down to half its throughput (bench/chat.py).
            self.awaiting[stored.seq] = stored
            self.inbox.put_nowait(("ack", stored.seq))
        else:
            await self.catch_up()
            await self.write_ack(stored)

    async def ack_in_line(self, seq: int) -> None:
        """An ack's turn in the queue: if its place has not come yet (a wake-up from another
        process is late, or was lost), the database fills the gap first."""
        if seq in self.awaiting:
            await self.catch_up()
        stored = self.awaiting.pop(seq, None)
        if stored is not None:
            await self.write_ack(stored)

    async def write_ack(self, stored: services.StoredMessage) -> None:
        await self.write(
            encode(
                "ack",
                client_id=stored.client_id,
                seq=stored.seq,
                duplicate=not stored.created,
                sent_at=stored.sent_at.isoformat() if stored.sent_at else None,
                read=self.take_read(),
            )
        )

    def typing(self, active: bool) -> None:
        if self.peer.role != "read_along" and self.session.state == SessionState.LIVE:
            self.typing_shown = active
            event = {"t": "typing", "sender": self.peer.role, "active": active}
            get_hub().publish(self.session.pk, event)

    def mark_read(self, seq: int) -> None:
        """A marker only moves forward, and only over messages this connection was sent; the
        writer stores it with its next batch and wakes the other side then."""
        if self.peer.role == "read_along" or self.delivered is None:
            return
        if self.read_up_to < seq <= self.delivered:
            self.read_up_to = seq
            get_writer().mark_read(services.ReadMark(self.session.pk, self.peer.role, seq))

    async def on_admit(self, frame: dict[str, Any]) -> None:
        if self.peer.role != Sender.THERAPIST:
            raise NotAllowedError
        self.session = await in_thread(_admit, session=self.session, therapist_id=self.peer.person)

    async def on_end(self, frame: dict[str, Any]) -> None:
        if self.peer.role != Sender.THERAPIST:
            raise NotAllowedError
        self.session = await in_thread(_end, session=self.session, therapist_id=self.peer.person)
        if self.session.state != SessionState.ENDED:  # not begun (scheduled) or cancelled
            raise SessionNotLiveError  # it went unanswered (a review finding)

    async def on_ping(self, frame: dict[str, Any]) -> None:
        await self.write(encode("pong"))

    # --- wake-ups and the timer -----------------------------------------------------------------

    async def handle_event(self, event: dict[str, Any]) -> None:
        kind = event.get("t")
        if kind == "msg":
            await self.on_message_event(event)
        elif kind == "resync":
            await self.resync()
        elif kind == "state":
            await self.refresh_state()
        elif kind == "recheck":
            await self.recheck()
        elif kind in ("typing", "read") and event.get("sender") != self.peer.role:
            if kind == "typing":
                await self.write(encode("typing", sender=event["sender"], active=event["active"]))
            else:
                await self.write(encode("read", sender=event["sender"], seq=event["seq"]))

    async def on_message_event(self, event: dict[str, Any]) -> None:
        if self.delivered is None or event["seq"] <= self.delivered:
            return
        if event["seq"] != self.delivered + 1:
            await self.catch_up()  # a gap: the database fills it, in order
            return
        if event["seq"] in self.awaiting:  # this connection's own message: its ack goes now
            self.delivered = event["seq"]
            await self.write_ack(self.awaiting.pop(event["seq"]))
            return
        context = message_body_context(
            session_id=self.session.pk, sender=event["sender"], client_id=event["cid"]
        )
        body = crypto.decrypt(event["ct"], context=context)
        await self.write(
            encode(
                "message",
                seq=event["seq"],
                sender=event["sender"],
                body=body,
                sent_at=event["sent_at"],
                read=self.take_read(),
            )
        )
        self.delivered = event["seq"]

    async def catch_up(self) -> None:
        if self.delivered is None:
            return
        while True:
            missed = await in_thread(
                selectors.messages_after, session_id=self.session.pk, after=self.delivered
            )
            for item in missed:
                self.delivered = item.seq
                if item.seq in self.awaiting:  # this connection's own: the ack in its place
                    await self.write_ack(self.awaiting.pop(item.seq))
                    continue
                await self.write(
                    encode(
                        "message",
                        seq=item.seq,
                        sender=item.sender,
                        body=item.body,
                        sent_at=item.sent_at.isoformat(),
                        read=self.take_read(),
                    )
                )
            if len(missed) < 500:
                return

    async def resync(self, fresh: ChatSession | None = None) -> None:
        """Re-read the session after wake-ups may have been lost: a change of state (the
        participant admitted or the session ended on another process while Redis was away)
        as well as messages. ``fresh``: the session as the safety poll just read it."""
        if fresh is None:
            fresh = await in_thread(_reload, pk=self.session.pk)
        changed = _shown_state(fresh) != _shown_state(self.session)
        self.session = fresh
        if changed:
            await self.emit_state()
        elif self.peer.role != "read_along":
            # The other side's marker whose wake-up was lost (Redis away): told as any other
            # (a review finding: it waited for the next marker to move).
            self.hold_read(fresh.read_by_other_side(self.peer.role))
        if self.delivered is not None and fresh.last_seq > self.delivered:
            await self.catch_up()

    async def refresh_state(self) -> None:
        self.session = await in_thread(_reload, pk=self.session.pk)
        await self.emit_state()
        await self.catch_up()

    async def emit_state(self) -> None:
        now = clock.now()
        read = self.session.read_by_other_side(self.peer.role)
        self.read_told = max(self.read_told, read)
        if self.read_news <= self.read_told:
            self.read_news = 0  # told here; its timer finds nothing to send
        await self.write(
            encode(
                "state",
                role=self.peer.role,
                state=self.session.state,
                remaining=timing.remaining_seconds(self.session, now)
                if self.session.state == SessionState.LIVE
                else None,
                warning=timing.in_warning(self.session, now),
                read_along=self.session.read_along,
                last_seq=self.session.last_seq,
                read=read,
            )
        )

    async def safety_poll(self) -> None:
        """Re-read what a lost wake-up would have brought (a change of state, messages),
        every SAFETY_POLL_TICKS ticks. Lost wake-ups are already made good by ``resync``
        (after Redis is back, after a failed publish, on a resend) and by gap detection;
        polling on every tick cost more than the messages themselves (bench/chat.py)."""
        self.ticks += 1
        if self.ticks % SAFETY_POLL_TICKS == 0:
            await self.recheck()

    async def recheck(self) -> None:
        """Close the socket (4403) if its sign-in no longer allows it; else bring the session
        up to date. On each safety poll, and at once when a sign-in ended or changed anywhere
        (a ``recheck`` wake-up naming this socket's)."""
        if not self.open:  # closed already (a hello found the sign-in gone): no second close
            return
        fresh = await in_thread(still_allowed, peer=self.peer)
        if fresh is None:
            await self.send({"type": "websocket.close", "code": CLOSE_FORBIDDEN})
            self.open = False
            return
        await self.resync(fresh)

    async def handle_tick(self) -> None:
        now = clock.now()
        left = timing.remaining_seconds(self.session, now)
        if self.session.state != SessionState.LIVE or left is None:
            await self.safety_poll()
            return
        forced = timing.forced_end_at(self.session)
        if forced is not None and now >= forced:
            await in_thread(services.session_expire_if_due, session=self.session)
            await self.refresh_state()
            return
        if left <= settings.CHAT_WARNING_SECONDS and not self.warned:
            self.warned = True
            await self.write(encode("warning", remaining=left))
        await self.write(encode("tick", remaining=left))
        await self.safety_poll()


# This process's open connections by the tags of their sign-ins (services.sign_in_tags).
_signed_in: dict[str, set[Connection]] = {}


def _recheck(event: dict[str, Any]) -> None:
    """The hub's listener on EVERYONE: wake the connections a ``recheck`` names. A
    ``resync`` there is owed for rechecks that Redis lost (a publish that failed while it
    was away): whose sign-in they named is not known any more, so every connection of the
    process checks its own (one read each, once, after an outage with a logout in it)."""
    kind = event.get("t")
    if kind == "recheck":
        named = {conn for tag in event.get("who", ()) for conn in _signed_in.get(tag, ())}
    elif kind == "resync":
        named = {conn for conns in _signed_in.values() for conn in conns}
    else:
        return
    for conn in named:
        conn.inbox.put_nowait(("hub", services.RECHECK))


def _admit(*, session: ChatSession, therapist_id: int) -> ChatSession:
    """Admit on a reader thread: the therapist's row is read there, never on the loop."""
    therapist = StaffUser.objects.get(pk=therapist_id)
    return services.session_admit(session=session, therapist=therapist, refuse_repeat=True)


def _end(*, session: ChatSession, therapist_id: int) -> ChatSession:
    """End on a reader thread, as ``_admit``: only while the session is still this
    therapist's (the socket's copy may predate a hand-over)."""
    therapist = StaffUser.objects.get(pk=therapist_id)
    return services.session_end(
        session=session,
        ended_by="therapist",
        actor=therapist.audit_ref,
        refuse_repeat=True,
        therapist=therapist,
    )


def _reload(*, pk: int) -> ChatSession:
    return ChatSession.objects.select_related("therapist").get(pk=pk)


def _shown_state(session: ChatSession) -> tuple[object, ...]:
    """What a ``state`` frame shows of a session, but for the clock and the read markers
    (which come on their own)."""
    return (session.state, session.admitted_at, session.ended_at, session.read_along)


ERROR_MESSAGES = {
    "too_large": _("This message is too long."),
    "bad_frame": _("The chat could not understand this. Please reload the page."),
    "text_only": _("Only text can be sent in this chat."),
    "rate_limited": _("You are sending very quickly. Please wait a moment."),
}
