"""The websocket path at its edges: races around the handshake, reconnects against the flood
allowance, and frames that once closed or broke a connection. Each was found by an adversarial
review (2026-12-01), written as a failing test first; the docstrings say what went wrong."""

from __future__ import annotations

import asyncio
import contextlib
import json
from unittest import mock

import pytest

from stopcsam.chat import services
from stopcsam.chat import sockets as sockets_module
from stopcsam.chat.models import ChatMessage, SessionState
from stopcsam.chat.tests.test_sockets import WORRY, joined
from stopcsam.chat.tests.wsharness import Socket, path

pytestmark = pytest.mark.django_db(transaction=True)


# --- 1. A change of state between the handshake's read and the hub subscription -------------


@pytest.mark.parametrize("hello", [False, True], ids=["no-hello", "after-hello"])
def test_a_state_change_just_before_subscribe_reaches_the_page(
    hello,
    settings,
    book,
    participant,
    therapist,
    cookies,
):
    """The therapist admits while the participant's socket is between its handshake (which
    read the session: waiting) and its hub subscription: that wake-up goes to nobody. The
    docs promise that the safety poll makes a lost change of state good with a `state`
    frame. Without a hello it does; after the client's hello (which every client sends
    first) on_hello has silently replaced self.session with the live row, so resync finds
    "no change" forever and the page stays in the waiting room for the whole session."""
    settings.CHAT_TICK_SECONDS = 0.2  # a safety poll every 0.4 s
    session = book(participant.participant, therapist.user)
    pc, tc = cookies[0](participant), cookies[1](therapist)
    real = sockets_module.authenticate

    def authenticate_then_admit(**kwargs):  # type: ignore[no-untyped-def]
        peer = real(**kwargs)
        if peer is not None and peer.role == "participant":
            services.session_admit(
                session=peer.session.__class__.objects.get(pk=session.pk), therapist=therapist.user
            )
        return peer

    async def scenario() -> list[dict]:
        t = await joined(session, tc)  # the therapist is connected: the hub has its loop
        with mock.patch.object(sockets_module, "authenticate", authenticate_then_admit):
            p = Socket(path(session), cookie=pc)
            assert await p.connect()
        frames = [await p.receive()]  # the first state frame: read again after subscribing
        if hello:
            await p.send({"type": "hello", "after": 0})
            frames.append(await p.until("caught_up"))
        deadline = asyncio.get_running_loop().time() + 2.0  # five safety polls
        with contextlib.suppress(TimeoutError):
            while asyncio.get_running_loop().time() < deadline:
                frames.append(await p.receive(timeout=2.0))
        await p.close()
        await t.close()
        return frames

    frames = asyncio.run(scenario())
    session.refresh_from_db()
    assert session.state == SessionState.LIVE
    states = [f["state"] for f in frames if f["type"] == "state"]
    assert states[0] == "live" and set(states) == {"live"}, states


# --- 2. A client id with a lone surrogate: the error frame cannot be encoded ----------------


class Utf8Socket(Socket):
    """As uvicorn's websockets-sansio protocol sends a text frame: ``text.encode()``
    (strict UTF-8), raising to the application when the text cannot be encoded."""

    async def connect(self) -> bool:
        outbox = self.from_app

        async def send(message: dict) -> None:
            if message.get("type") == "websocket.send" and message.get("text") is not None:
                message["text"].encode()  # UnicodeEncodeError for a lone surrogate
            await outbox.put(message)

        self.task = asyncio.create_task(
            sockets_module.application(self.scope, self.to_app.get, send)
        )
        await self.to_app.put({"type": "websocket.connect"})
        first = await asyncio.wait_for(self.from_app.get(), 5)
        return first["type"] == "websocket.accept"


def test_a_client_id_with_a_lone_surrogate_gets_an_error_frame(
    live,
    participant,
    therapist,
    cookies,
):
    """docs: a frame that does not match is refused with an error frame and the connection
    stays open. A client id is echoed in the error frame; with "\\ud800" in it the frame
    cannot be encoded, Connection.write swallows the fault and marks the connection closed:
    no error frame, and the socket is dropped (no close frame) at the next wake-up."""
    pc, tc = cookies[0](participant), cookies[1](therapist)

    async def scenario() -> tuple[list[dict], bool]:
        p = Utf8Socket(path(live), cookie=pc)
        assert await p.connect()
        await p.receive()
        await p.send({"type": "hello", "after": 0})
        await p.until("caught_up")
        t = await joined(live, tc)
        await p.send('{"type":"send","client_id":"c-\\ud800-participant","body":"I am worried"}')
        frames = []
        with contextlib.suppress(TimeoutError):
            frames.append(await p.receive(timeout=1.0))
        # The other side writes: the participant's socket delivers it, then its task ends.
        await t.send({"type": "send", "client_id": "c-therapist-1", "body": "How are you?"})
        await t.until("ack")
        await asyncio.sleep(0.5)
        ended = p.task is not None and p.task.done()
        await t.close()
        if not ended:
            await p.close()
        return frames, ended

    frames, ended = asyncio.run(scenario())
    assert ([f.get("code") for f in frames], ended) == (["invalid"], False), (
        f"frames: {frames}; application returned without a close frame: {ended}"
    )


# --- 3. The flood allowance is forgotten when the person's last socket closes ---------------


def test_reconnecting_does_not_refill_the_send_allowance(live, participant, cookies):
    """docs: 2 messages/s (burst 10) per person and session. The allowance is dropped with
    the person's last socket (allowance_leave), so closing and reopening the socket gives a
    fresh burst of 10 at once: N reconnects a second send 10*N messages a second."""
    pc = cookies[0](participant)

    async def burst(tag: str) -> int:
        """One reconnect: hello and ten sends at once; the acks it got. A refused hello or
        the cut-off for the flood (1008) is fair: only the acks count."""
        p = Socket(path(live), cookie=pc)
        assert await p.connect()
        await p.send({"type": "hello", "after": 0})
        for n in range(10):
            await p.send({"type": "send", "client_id": f"c-{tag}-{n:04d}", "body": "Hello"})
        acks = 0
        with contextlib.suppress(TimeoutError):
            while True:
                frame = await p.receive(timeout=1.0)
                if frame["type"] == "__closed__":
                    return acks
                acks += frame["type"] == "ack"
        await p.close()
        return acks

    async def scenario() -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        results = [await burst(f"r{i}") for i in range(5)]
        return results, loop.time() - start

    results, seconds = asyncio.run(scenario())
    stored = ChatMessage.objects.filter(session=live).count()
    allowed = 10 + 2 * seconds  # the burst, then 2 a second (CHAT_SEND_RATE)
    assert stored <= allowed + 1, f"{stored} stored in {seconds:.1f} s ({results} per socket)"
    assert seconds < 10  # the five reconnects were quick: the limit is what held them


# --- 4. A logout between the handshake's read and the socket's registration ----------------


def test_a_logout_during_the_handshake_closes_the_socket_at_once(
    settings, live, participant, participant_client
):
    """docs: a logout closes the sockets of that sign-in at once (a ``recheck`` wake-up).
    The socket registers its sign-in tags (``_signed_in``) only in Connection.run, after the
    handshake read the Django session on a thread: a logout in between wakes nobody, and
    the signed-out socket keeps receiving the conversation until its safety poll (two
    ticks: two minutes by default)."""
    settings.CHAT_TICK_SECONDS = 60
    client = participant_client(participant)
    cookie = f"sid={client.cookies['sid'].value}"
    real = sockets_module.authenticate

    def authenticate_then_logout(**kwargs):  # type: ignore[no-untyped-def]
        peer = real(**kwargs)
        from django.urls import reverse

        client.post(reverse("accounts:logout"))  # the Django session is deleted: a recheck
        return peer

    async def scenario() -> dict:
        with mock.patch.object(sockets_module, "authenticate", authenticate_then_logout):
            p = Socket(path(live), cookie=cookie)
            assert await p.connect()
        return await p.receive(timeout=2)  # checked again once registered: closed at once

    frame = asyncio.run(scenario())
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=cookie.removeprefix("sid=")).exists()
    assert (frame["type"], frame["code"]) == ("__closed__", 4403), frame


# --- 5. A client id with a trailing newline passes the check ("$" matches before "\n") -------


def test_a_client_id_with_a_trailing_newline_is_refused(live):
    """docs: client_id is 8-64 of A-Z a-z 0-9 _ -. CLIENT_ID uses ``$``, which also matches
    before a final newline, so "c-participant-1\\n" (and 64 characters plus a newline, 65
    in all, one more than the column holds) is stored."""
    from stopcsam.chat.exceptions import InvalidMessageError

    with pytest.raises(InvalidMessageError):
        stored = services.message_send(
            session_id=live.pk, sender="participant", client_id="c-participant-1\n", body=WORRY
        )
        assert stored is None


def test_one_overlong_client_id_fails_every_message_of_its_batch(
    settings,
    live,
    book,
    other_participant,
    participant,
    therapist,
    cookies,
):
    """On PostgreSQL (client_id is varchar(64)), 64 characters and a newline pass the check
    but not the column: the batch statement raises, and the writer answers EVERY message of
    the group commit ``unavailable``, other people's messages in other sessions included.
    Run with DATABASE_URL pointing at PostgreSQL."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")
    other = book(other_participant.participant, therapist.user)
    services.session_enter(session=other, role="participant")
    other = services.session_admit(session=other, therapist=therapist.user)
    pc, oc = cookies[0](participant), cookies[0](other_participant)

    async def scenario() -> dict:
        victim = await joined(live, pc)
        attacker = await joined(other, oc)
        poison = json.dumps({"type": "send", "client_id": "a" * 64 + "\n", "body": "Hello"})
        await attacker.send(poison)
        await victim.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        answer = await victim.receive()
        while answer["type"] not in ("ack", "error"):
            answer = await victim.receive()
        await victim.close()
        await attacker.close()
        return answer

    from stopcsam.chat import writer as writer_module

    # Let one batch gather both sends (under load the writer gathers up to 8 ms by itself).
    with mock.patch.object(writer_module, "gathering_time", lambda last: 0.3):
        answer = asyncio.run(scenario())
    assert answer["type"] == "ack", f"an innocent message in another session got {answer}"


# --- 6. Binary frames are refused before the frame allowance is taken ------------------------


def test_a_flood_of_binary_frames_is_throttled_and_cut_off(live, participant, cookies):
    """docs: more than 10 frames/s (burst 40) is ``rate_limited``, and a connection with 50
    frames refused for the rate is closed (1008). take_frame answers a binary frame
    (``text_only``) before it takes from the allowance: binary frames are never limited,
    each is answered with an error frame, and the connection is never cut off."""
    pc = cookies[0](participant)

    async def scenario() -> dict:
        p = await joined(live, pc)
        for _ in range(300):
            await p.send_bytes(b"\x00")
        codes: dict = {}
        try:
            while True:
                frame = await p.receive(timeout=1.0)
                key = (
                    frame.get("code")
                    if frame["type"] != "__closed__"
                    else f"closed {frame['code']}"
                )
                codes[key] = codes.get(key, 0) + 1
                if frame["type"] == "__closed__":
                    break
        except TimeoutError:
            pass
        if "closed 1008" not in codes:
            await p.close()
        return codes

    codes = asyncio.run(scenario())
    assert "closed 1008" in codes and codes.get("text_only", 0) <= 40, f"answers: {codes}"


# --- 7. A message of nothing but invisible characters ----------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "\u200b\u200b",
        "\u2060",
        "\ufeff",
        "\u202e",
        "\u2066\u2069",
        # Unicode's other default-ignorable characters, which show as nothing too (a review
        # finding): Hangul fillers, a variation selector, the combining grapheme joiner, tag
        # characters, Khmer's inherent vowel; and a C1 control character.
        "\u3164",
        "\u115f\u1160",
        "\uffa0",
        "\ufe0f",
        "\u034f",
        "\U000e0041\U000e007f",
        "\u17b4",
        "\x81",
        "\u2800\u2800",  # the blank Braille pattern: drawn as nothing, though not ignorable
    ],
)
def test_a_message_of_invisible_format_characters_is_refused_as_empty(body):
    """``message_clean`` strips C0 controls and surrogates, and refuses a body that is
    whitespace only, but Unicode format characters (zero-width space, word joiner, BOM,
    bidi overrides and isolates) are neither: a message of nothing visible is stored and
    shown as an empty bubble."""
    from stopcsam.chat.exceptions import InvalidMessageError

    with pytest.raises(InvalidMessageError):
        services.message_clean(body)


# --- 8. A frame whose "type" is a list or an object ------------------------------------------


@pytest.mark.parametrize("text", ['{"type": []}', '{"type": {"a": 1}}', '{"type": ["send"]}'])
def test_a_frame_whose_type_is_not_a_string_gets_bad_frame_and_the_connection_lives_on(
    text,
    live,
    participant,
    cookies,
    caplog,
):
    """docs: a mistyped frame is refused with an error frame (bad_frame) and the connection
    stays open. protocol.conforms tests ``frame.get("type") not in schemas``: an unhashable
    type (a list, an object) raises TypeError, which is no FrameError; the reading task
    fails, the connection is closed 1011 and an ERROR is logged, by any client, at will."""
    pc = cookies[0](participant)

    async def scenario() -> dict:
        p = await joined(live, pc)
        await p.send(text)
        frame = await p.receive()
        if frame["type"] != "__closed__":
            await p.close()
        return frame

    frame = asyncio.run(scenario())
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert (frame.get("code"), errors) == ("bad_frame", []), f"got {frame}; logged {errors}"


def test_a_read_marker_whose_wake_up_was_lost_reaches_the_page_with_the_resync(
    settings, live, participant, cookies
):
    """Redis away: the other side's marker was stored, its wake-up lost. The resync after
    Redis came back re-read the session but never told the marker (a review finding)."""
    from stopcsam.chat.hub import get_hub
    from stopcsam.chat.models import ChatSession

    settings.CHAT_READ_HOLD_SECONDS = 0.1
    pc = cookies[0](participant)

    async def scenario() -> list[dict]:
        p = await joined(live, pc)
        await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        await p.until("ack")
        await asyncio.to_thread(
            lambda: ChatSession.objects.filter(pk=live.pk).update(therapist_read_seq=1)
        )
        get_hub().publish(live.pk, {"t": "resync"})  # what every socket gets once Redis is back
        frames = []
        with contextlib.suppress(TimeoutError):
            while True:
                frames.append(await p.receive(timeout=1))
        await p.close()
        return frames

    frames = asyncio.run(scenario())
    assert {"type": "read", "sender": "therapist", "seq": 1} in frames


def test_a_send_refused_for_the_frame_rate_names_its_message(live, participant, cookies):
    """So that the client sends that one again, not every message it has in flight (a review
    finding: the resend of everything went past the allowance again)."""
    pc = cookies[0](participant)

    async def scenario() -> dict:
        p = await joined(live, pc)
        for _ in range(45):  # the frame allowance (burst 40) used up by pings
            await p.send({"type": "ping"})
        await p.send({"type": "send", "client_id": "c-frame-0001", "body": WORRY})
        while (frame := await p.receive())["type"] != "error" or frame["client_id"] is None:
            pass
        await p.close()
        return frame

    frame = asyncio.run(scenario())
    assert (frame["code"], frame["client_id"]) == ("rate_limited", "c-frame-0001")
