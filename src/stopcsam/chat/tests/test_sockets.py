from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.contrib.sessions.models import Session
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from stopcsam.accounts.models import Role
from stopcsam.chat import selectors, services
from stopcsam.chat import sockets as sockets_module
from stopcsam.chat.hub import get_hub
from stopcsam.chat.models import ChatMessage, ChatSession, SessionState
from stopcsam.chat.protocol import CLIENT_FRAMES, FrameError, parse_client_frame
from stopcsam.chat.sockets import Connection, Peer
from stopcsam.chat.tests import fakes
from stopcsam.chat.tests.wsharness import Socket, path
from stopcsam.conftest import _staff
from stopcsam.core.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

WORRY = "I am worried about my urges"


async def joined(session, cookie: str, after: int = 0) -> Socket:
    sock = Socket(path(session), cookie=cookie)
    assert await sock.connect()
    assert (await sock.receive())["type"] == "state"
    await sock.send({"type": "hello", "after": after})
    await sock.until("caught_up")
    return sock


def test_participant_and_therapist_chat_both_ways(live, participant, therapist, cookies):
    _as_participant, _as_staff = cookies

    pc = cookies[0](participant)
    tc = cookies[1](therapist)

    async def scenario() -> None:
        p = await joined(live, pc)
        t = await joined(live, tc)
        await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        ack = await p.until("ack")
        sent_at = datetime.fromisoformat(ack.pop("sent_at"))  # the time of the sender's copy
        assert abs(sent_at - live.admitted_at) < timedelta(minutes=5)
        assert ack == {
            "type": "ack",
            "client_id": "c-participant-1",
            "seq": 1,
            "duplicate": False,
            "read": None,
        }
        got = await t.until("message")
        assert (got["seq"], got["sender"], got["body"]) == (1, "participant", WORRY)
        await t.send({"type": "send", "client_id": "c-therapist-1", "body": "How was your week?"})
        got = await p.until("message")  # no echo of its own message 1 came before this
        assert (got["seq"], got["sender"], got["body"]) == (2, "therapist", "How was your week?")
        await p.close()
        await t.close()

    asyncio.run(scenario())


def test_a_resend_of_the_same_client_id_returns_the_same_number(live, participant, cookies):
    pc = cookies[0](participant)

    async def scenario() -> None:
        p = await joined(live, pc)
        for _ in range(3):
            await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        acks = await p.collect("ack", 3)
        assert [a["seq"] for a in acks] == [1, 1, 1]
        assert [a["duplicate"] for a in acks] == [False, True, True]
        await p.close()

    asyncio.run(scenario())
    assert ChatMessage.objects.count() == 1


def store_without_wakeup(
    session, sender: str, client_id: str, body: str = WORRY
) -> services.StoredMessage:
    """As if the wake-up of a committed message were still on its way (or lost)."""
    with mock.patch("stopcsam.chat.services.get_hub"):
        return services.message_send(
            session_id=session.pk, sender=sender, client_id=client_id, body=body
        )


@pytest.mark.parametrize(
    ("stored", "ack_seq"),
    [
        (("therapist", "c-therapist-1", "How was your week?"), 2),  # the other side's, earlier
        (("participant", "c-participant-1", WORRY), 1),  # this very message, from a lost link
    ],
    ids=["earlier-message", "resend-not-yet-seen"],
)
def test_an_ack_never_overtakes_a_message_the_connection_has_not_seen(
    stored, ack_seq, live, participant, cookies
):
    pc = cookies[0](participant)

    async def scenario() -> None:
        p = await joined(live, pc)
        await asyncio.to_thread(store_without_wakeup, live, *stored)
        await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        first = await p.receive()
        assert (first["type"], first["seq"], first["sender"]) == ("message", 1, stored[0])
        ack = await p.until("ack")
        duplicate = ack_seq == 1
        assert (ack["seq"], ack["duplicate"], ack["sent_at"] is None) == (
            ack_seq,
            duplicate,
            duplicate,
        )
        await p.close()

    asyncio.run(scenario())


def participant_connection(session) -> tuple[Connection, list[dict]]:
    """A participant's connection without a socket, as after its hello; the frames it
    writes are collected, decoded."""
    frames: list[dict] = []

    async def send(message: dict) -> None:
        frames.append(json.loads(message["text"]))

    connection = Connection(Peer(session, "participant", "test", "en"), send)
    connection.delivered = 0
    return connection, frames


async def handle_queued(connection: Connection) -> None:
    while not connection.inbox.empty():
        await connection.handle(*connection.inbox.get_nowait())


@pytest.mark.parametrize("wakeups", ["queued", "lost"])
def test_when_messages_cross_the_ack_waits_in_line(wakeups, live):
    """The other side's message 1 and this side's message 2 were stored together, so the
    wake-ups of both were queued here before this send was answered: the ack waits behind
    message 1, goes out in the place of message 2, and no database query is made. If the
    wake-ups never come (another process's, lost), the database fills the gap instead."""
    first = store_without_wakeup(live, "therapist", "c-therapist-1")
    mine = store_without_wakeup(live, "participant", "c-participant-1")
    connection, frames = participant_connection(live)

    async def scenario() -> None:
        if wakeups == "queued":
            for stored in (first, mine):
                connection.wake(services._message_event(stored))
        await connection.answer(mine)
        await handle_queued(connection)

    fetch = mock.patch.object(selectors, "messages_after", wraps=selectors.messages_after)
    with fetch as fetched:
        asyncio.run(scenario())
    assert [(f["type"], f["seq"]) for f in frames] == [("message", 1), ("ack", 2)]
    assert frames[0]["body"] == WORRY and frames[1]["client_id"] == "c-participant-1"
    assert fetched.call_count == (0 if wakeups == "queued" else 1)


@pytest.mark.parametrize("case", ["alone", "something_queued_ahead", "another_tab_sent_it"])
def test_the_wakeup_of_a_clients_own_send_is_left_to_its_ack(case, live):
    """The wake-up of this client's own message, next in line, is not queued: the ack goes
    out in its place, and the run task is not woken for nothing. With anything queued ahead
    of it, or when another tab of the same side sent it, it keeps its place in line."""
    mine = store_without_wakeup(live, "participant", "c-participant-1")
    connection, frames = participant_connection(live)

    async def scenario() -> int:
        if case != "another_tab_sent_it":
            connection.storing.add("c-participant-1")
        if case == "something_queued_ahead":
            connection.inbox.put_nowait(("tick", None))
        connection.wake(services._message_event(mine))
        queued = connection.inbox.qsize()
        connection.storing.clear()
        if case == "another_tab_sent_it":
            await connection.handle(*connection.inbox.get_nowait())
        else:
            await connection.answer(mine)
        await handle_queued(connection)
        return queued

    queued = asyncio.run(scenario())
    assert queued == {"alone": 0, "something_queued_ahead": 2, "another_tab_sent_it": 1}[case]
    expected = ("message", 1) if case == "another_tab_sent_it" else ("ack", 1)
    assert [(f["type"], f["seq"]) for f in frames if f["type"] != "tick"] == [expected]


def test_a_second_connection_of_the_sender_gets_the_message(live, participant, cookies):
    pc = cookies[0](participant)

    async def scenario() -> None:
        p = await joined(live, pc)
        other_tab = await joined(live, pc)
        await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        await p.until("ack")
        got = await other_tab.until("message")
        assert (got["seq"], got["sender"], got["body"]) == (1, "participant", WORRY)
        await p.close()
        await other_tab.close()

    asyncio.run(scenario())


def test_a_reconnecting_client_gets_what_it_missed_in_order_once(
    live, participant, therapist, cookies
):
    _as_participant, _as_staff = cookies

    pc = cookies[0](participant)
    tc = cookies[1](therapist)

    async def scenario() -> None:
        t = await joined(live, tc)
        for n in range(1, 6):
            await t.send({"type": "send", "client_id": f"c-therapist-{n}", "body": f"Question {n}"})
        await t.collect("ack", 5)
        p = Socket(path(live), cookie=pc)
        assert await p.connect()
        await p.send({"type": "hello", "after": 2})
        frames = []
        while (frame := await p.receive())["type"] != "caught_up":
            frames.append(frame)
        assert [f["seq"] for f in frames if f["type"] == "message"] == [3, 4, 5]
        assert frame["seq"] == 5
        await t.send({"type": "send", "client_id": "c-therapist-6", "body": "Question 6"})
        assert (await p.until("message"))["seq"] == 6
        await p.close()
        await t.close()

    asyncio.run(scenario())


def test_a_gap_in_wakeups_is_filled_from_the_database(live, participant, cookies):
    pc = cookies[0](participant)

    async def scenario() -> None:
        p = await joined(live, pc)
        # Two messages stored without any wake-up (as if pub/sub lost them) ...
        with mock.patch("stopcsam.chat.services.publish_on_commit"):
            for n in (1, 2):
                await asyncio.to_thread(
                    services.message_send,
                    session_id=live.pk,
                    sender="therapist",
                    client_id=f"c-therapist-{n}",
                    body=f"Question {n}",
                )
        # ... then one with a wake-up: the client still gets 1, 2, 3 in order.
        await asyncio.to_thread(
            services.message_send,
            session_id=live.pk,
            sender="therapist",
            client_id="c-therapist-3",
            body="Question 3",
        )
        seqs = [(await p.until("message"))["seq"] for _ in range(3)]
        assert seqs == [1, 2, 3]
        await p.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("who", ["stranger", "other_participant", "other_therapist", "no_otp"])
def test_nobody_joins_a_session_that_is_not_theirs(
    who, live, book, other_participant, therapist, therapist_es, cookies
):
    as_participant, as_staff = cookies
    book(other_participant.participant, therapist_es.user)  # a valid user of another session
    cookie = {
        "stranger": "sid=not-a-session",
        "other_participant": as_participant(other_participant),
        "other_therapist": as_staff(therapist_es),
        "no_otp": as_staff(therapist, verified=False),
    }[who]

    async def scenario() -> None:
        sock = Socket(path(live), cookie=cookie)
        assert not await sock.connect()
        assert sock.close_code == 4403

    asyncio.run(scenario())


def test_a_malformed_cookie_of_another_name_does_not_lose_the_session(live, participant, cookies):
    cookie = "theme=a b; " + cookies[0](participant) + '; other="unterminated'

    async def scenario() -> None:
        sock = await joined(live, cookie)
        await sock.close()

    asyncio.run(scenario())


def test_a_session_cookie_of_the_wrong_shape_is_refused_cleanly(live, participant, cookies):
    """A NUL in the cookie reached the session lookup, an error on PostgreSQL."""

    async def scenario() -> None:
        for value in ("abc\x00defghijkl", "ABCDEFGHIJKLMNOP", "short"):
            sock = Socket(path(live), cookie=f"sid={value}")
            assert not await sock.connect()
            assert sock.close_code == 4403

    asyncio.run(scenario())


def test_a_handshake_from_another_site_is_refused(live, participant, cookies):
    cookie = cookies[0](participant)

    cookies[0](participant)

    async def scenario() -> None:
        for origin in ("https://evil.example", "http://testserver.evil.example", ""):
            sock = Socket(path(live), cookie=cookie, origin=origin)
            assert not await sock.connect()
            assert sock.close_code == 4403

    asyncio.run(scenario())


def test_bad_frames_get_an_error_frame_and_the_connection_lives_on(live, participant, cookies):
    pc = cookies[0](participant)

    async def scenario() -> None:
        p = await joined(live, pc)
        for bad in (
            "not json",
            {"type": "send", "client_id": "c-participant-1"},
            {"type": "send", "client_id": "c-participant-1", "body": WORRY, "extra": 1},
            {"type": "hello", "after": True},
            {"type": "upload", "file": "x"},
            {"type": "read", "seq": -1},
            "[" * 16_000,  # nested too deep for the JSON parser (a RecursionError)
        ):
            await p.send(bad)
            error = await p.until("error")
            assert error["code"] == "bad_frame"
            # The message it was, when there is one: the client gives its text back.
            sent = isinstance(bad, dict) and bad["type"] == "send"
            assert error["client_id"] == ("c-participant-1" if sent else None)
        await p.send('{"type": "send", "client_id": "c-participant-4", "body": "I am worr')
        error = await p.until("error")  # cut short: not JSON, but its id is found all the same
        assert (error["code"], error["client_id"]) == ("bad_frame", "c-participant-4")
        await p.send({"type": "send", "client_id": "c-participant-2", "body": "x" * 20_000})
        error = await p.until("error")  # the id, though the frame is not parsed (a review finding)
        assert (error["code"], error["client_id"]) == ("too_large", "c-participant-2")
        await p.send_bytes(b"\x89PNG")
        assert (await p.until("error"))["code"] == "text_only"
        await p.send({"type": "send", "client_id": "c-participant-3", "body": "x" * 4001})
        error = await p.until("error")
        assert (error["code"], error["client_id"]) == ("invalid", "c-participant-3")
        await p.send({"type": "ping"})
        assert (await p.until("pong"))["type"] == "pong"
        await p.close()

    asyncio.run(scenario())
    assert not ChatMessage.objects.exists()


def test_a_clients_frames_are_answered_in_the_order_sent(live, participant, cookies):
    """Sends, refusals and pings are answered one after the other: an error never overtakes
    the ack of a send before it, nor a pong an error."""
    pc = cookies[0](participant)

    async def scenario() -> list[tuple[str, str]]:
        p = await joined(live, pc)
        await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        await p.send({"type": "send", "client_id": "c-participant-2"})
        await p.send({"type": "ping"})
        await p.send_bytes(b"\x89PNG")
        await p.send({"type": "send", "client_id": "c-participant-3", "body": WORRY})
        await p.send({"type": "ping"})
        answers = [await p.receive() for _ in range(6)]
        await p.close()
        return [(a["type"], a.get("code") or a.get("client_id") or "") for a in answers]

    assert asyncio.run(scenario()) == [
        ("ack", "c-participant-1"),
        ("error", "bad_frame"),
        ("pong", ""),
        ("error", "text_only"),
        ("ack", "c-participant-3"),
        ("pong", ""),
    ]


def test_errors_are_in_the_participants_language(live, participant, cookies):
    pc = cookies[0](participant)

    async def scenario() -> None:
        sock = Socket(path(live) + "", cookie=pc)
        sock.scope["query_string"] = b"lang=de"
        assert await sock.connect()
        await sock.send("{")
        error = await sock.until("error")
        assert "Seite" in error["message"]
        await sock.close()

    asyncio.run(scenario())


def test_more_sockets_do_not_multiply_a_persons_allowance(live, participant, cookies):
    """The send allowance (burst 10) belongs to the person in the session, not the socket:
    30 messages spread over three sockets get no more acks than one socket would."""
    pc = cookies[0](participant)

    async def scenario() -> None:
        socks = [await joined(live, pc) for _ in range(3)]
        for n in range(30):
            frame = {"type": "send", "client_id": f"c-spread-{n:04d}", "body": "Hello"}
            await socks[n % 3].send(frame)
        acks = 0
        for sock in socks:
            answered = 0
            while answered < 10:
                frame = await sock.receive()
                if frame["type"] in ("ack", "error"):
                    answered += 1
                    acks += frame["type"] == "ack"
        assert 5 <= acks <= 15  # about the one burst, not three
        for sock in socks:
            await sock.close()

    asyncio.run(scenario())
    key = (live.pk, "participant", participant.participant.pk)
    # Kept after the last socket until it would be full again (a reconnect does not refill
    # it), then forgotten.
    assert sockets_module._allowances[key].sockets == 0
    sockets_module._allowances[key].left_at -= 60  # type: ignore[operator]
    sockets_module._allowances_sweep(force=True)
    assert key not in sockets_module._allowances


def test_a_flood_is_throttled_and_then_cut_off(live, participant, cookies):
    pc = cookies[0](participant)

    async def scenario() -> None:
        p = await joined(live, pc)
        for n in range(30):
            await p.send({"type": "send", "client_id": f"c-flood-{n:04d}", "body": "Hello"})
        acks = errors = 0
        while acks + errors < 30:
            frame = await p.receive()
            acks += frame["type"] == "ack"
            errors += frame["type"] == "error" and frame["code"] == "rate_limited"
        assert 5 <= acks <= 15 and errors >= 15
        for _ in range(200):
            await p.send({"type": "ping"})
        while (frame := await p.receive())["type"] != "__closed__":
            pass
        assert frame["code"] == 1008

    asyncio.run(scenario())


def test_refusals_for_the_rate_are_forgotten_so_only_a_flood_is_cut_off():
    """A client on a poor line resends what it kept after each outage, and some of it is
    refused for the rate. Counted for good, those refusals closed it in the end (1008): a
    review finding. Forgotten at one a second, only a flood gets there."""
    allowance = sockets_module.Allowance(
        sockets_module.TokenBucket(10, 40), sockets_module.TokenBucket(2, 10)
    )
    now = 1000.0
    for _outage in range(100):  # 5 refused every 10 s, for over 16 minutes
        assert not any(allowance.refused(now + n * 0.01) for n in range(5))
        now += 10
    flood = [allowance.refused(now + n * 0.001) for n in range(60)]  # 60 in 60 ms
    assert flood.index(True) == sockets_module.MAX_DROPPED


def test_end_and_admit_before_the_participant_came_are_answered(
    book, participant, therapist, cookies
):
    """Found by a review helper: `end` of a session not begun went unanswered."""
    session = book(participant.participant, therapist.user)
    tc = cookies[1](therapist)

    async def scenario() -> list[str]:
        t = await joined(session, tc)
        codes = []
        for kind in ("end", "admit"):
            await t.send({"type": kind})
            codes.append((await t.until("error", timeout=2))["code"])
        await t.close()
        return codes

    assert asyncio.run(scenario()) == ["not_live", "not_open"]
    session.refresh_from_db()
    assert session.state == "scheduled"


def test_the_therapist_admits_and_ends_and_both_see_the_state(
    book, participant, therapist, cookies
):
    session = book(participant.participant, therapist.user)
    _as_participant, _as_staff = cookies

    pc = cookies[0](participant)
    tc = cookies[1](therapist)

    async def scenario() -> None:
        p = Socket(path(session), cookie=pc)
        assert await p.connect()
        assert (await p.receive())["state"] == "waiting"
        t = await joined(session, tc)
        await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        assert (await p.until("error"))["code"] == "not_live"
        await p.send({"type": "admit"})
        assert (await p.until("error"))["code"] == "forbidden"
        await t.send({"type": "admit"})
        assert (await p.until("state"))["state"] == "live"
        await t.send({"type": "end"})
        assert (await p.until("state"))["state"] == "ended"
        await p.close()
        await t.close()

    asyncio.run(scenario())


def test_an_admit_or_end_sent_again_is_answered(live, therapist, cookies):
    """Found by a review helper: an ``admit`` of a session already live, or an ``end`` of one
    already ended (a second tab, a resend after a reconnect), went unanswered."""
    tc = cookies[1](therapist)

    async def scenario() -> list[str]:
        t = await joined(live, tc)
        await t.send({"type": "admit"})
        codes = [(await t.until("error", timeout=2))["code"]]
        await t.send({"type": "end"})
        assert (await t.until("state", timeout=2))["state"] == "ended"
        await t.send({"type": "end"})
        codes.append((await t.until("error", timeout=2))["code"])
        await t.send({"type": "admit"})
        codes.append((await t.until("error", timeout=2))["code"])
        await t.close()
        return codes

    assert asyncio.run(scenario()) == ["admitted", "ended", "ended"]
    assert AuditEvent.objects.filter(action="chat.end").count() == 1
    assert AuditEvent.objects.filter(action="chat.admit").count() == 1


@pytest.mark.parametrize("how", ["resync", "safety-poll"])
def test_a_lost_change_of_state_is_made_good(how, settings, book, participant, therapist, cookies):
    """The therapist admits on another process while Redis is away: the wake-up is lost.
    The participant's page leaves the waiting room on the next ``resync`` (Redis is back) or
    safety poll all the same."""
    settings.CHAT_TICK_SECONDS = 0.2
    session = book(participant.participant, therapist.user)
    pc = cookies[0](participant)

    async def scenario() -> None:
        p = Socket(path(session), cookie=pc)
        assert await p.connect()
        assert (await p.receive())["state"] == "waiting"
        await p.send({"type": "hello", "after": 0})
        await p.until("caught_up")
        with mock.patch("stopcsam.chat.services.get_hub"):  # the wake-up is lost
            await asyncio.to_thread(
                services.session_admit, session=session, therapist=therapist.user
            )
        if how == "resync":
            get_hub().publish(session.pk, {"t": "resync"})
        state = await p.until("state", timeout=3)
        assert state["state"] == "live" and state["remaining"] > 0
        await p.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "how",
    ["participant-logs-out", "staff-deactivated", "site-stops-reading-along", "still-signed-in"],
)
def test_a_socket_whose_sign_in_ended_is_closed(
    how, settings, live, participant, therapist, supervisor, cookies
):
    """Each safety poll checks the Django session behind the socket: after a logout (or an
    expired session), a deactivated staff account, or a supervisor's site taken off the
    read-along list, the socket is closed (4403)."""
    settings.CHAT_TICK_SECONDS = 0.1
    settings.CHAT_READ_ALONG_SITES = ["DE"]
    live.read_along = True
    live.save(update_fields=["read_along"])
    cookie = {
        "staff-deactivated": lambda: cookies[1](therapist),
        "site-stops-reading-along": lambda: cookies[1](supervisor),
    }.get(how, lambda: cookies[0](participant))()

    async def scenario() -> None:
        sock = await joined(live, cookie)
        if how == "site-stops-reading-along":
            settings.CHAT_READ_ALONG_SITES = []
        elif how == "participant-logs-out":
            key = cookie.removeprefix("sid=")
            await asyncio.to_thread(Session.objects.filter(session_key=key).delete)
        elif how == "staff-deactivated":
            therapist.user.is_active = False
            await asyncio.to_thread(therapist.user.save, update_fields=["is_active"])
        if how == "still-signed-in":
            with pytest.raises(TimeoutError):  # ticks keep coming, and polls (every other)
                await asyncio.wait_for(sock.until("__closed__"), 1.5)
        else:
            assert (await asyncio.wait_for(sock.until("__closed__"), 3))["code"] == 4403
        await sock.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("how", ["participant-logs-out", "staff-logs-out", "staff-deactivated"])
def test_a_socket_closes_at_once_when_its_sign_in_ends(
    how, settings, live, participant, therapist, participant_client, staff_client
):
    """Not at the next safety poll (no tick comes within the test): the logout, or the change
    to the account, wakes the sockets signed in with it to check again. The other side's
    socket stays open."""
    settings.CHAT_TICK_SECONDS = 60
    as_participant, as_therapist = participant_client(participant), staff_client(therapist)

    async def scenario() -> None:
        p = await joined(live, f"sid={as_participant.cookies['sid'].value}")
        t = await joined(live, f"sid={as_therapist.cookies['sid'].value}")
        if how == "participant-logs-out":
            await asyncio.to_thread(as_participant.post, reverse("accounts:logout"))
            gone, stays = p, t
        elif how == "staff-logs-out":
            await asyncio.to_thread(as_therapist.post, reverse("accounts:staff_logout"))
            gone, stays = t, p
        else:
            therapist.user.is_active = False
            await asyncio.to_thread(therapist.user.save)
            gone, stays = t, p
        assert (await asyncio.wait_for(gone.until("__closed__"), 2))["code"] == 4403
        await stays.send({"type": "ping"})
        assert (await stays.until("pong"))["type"] == "pong"
        await stays.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "how",
    [
        "handed-over",
        "supervisor-moved",
        "no-longer-supervisor",
        "participant-erased",
        "escalation-handled",
    ],
)
def test_a_socket_closes_at_once_when_its_person_may_no_longer_see_the_session(
    how, settings, book, participant, therapist, supervisor, site_de, site_es, cookies
):
    """The socket's right is the handshake's: this person, let into this session in this
    role. An appointment handed over to another therapist, a supervisor moved to another
    site (that reads along too) or no longer a supervisor, or the session erased with its
    participant, or a supervisor's escalation handled (found by a review helper): the socket
    closes (4403) at once, not at the next safety poll."""
    settings.CHAT_TICK_SECONDS = 60
    # With an escalation the supervisor is let in by it, not by reading along.
    settings.CHAT_READ_ALONG_SITES = [] if how == "escalation-handled" else ["DE", "ES"]
    session = book(participant.participant, therapist.user)
    session.read_along = how != "escalation-handled"
    session.save(update_fields=["read_along"])
    services.session_enter(session=session, role="participant")
    escalation = (
        services.escalation_raise(session=session, raised_by=therapist.user, reason="Review")
        if how == "escalation-handled"
        else None
    )
    supervising = ("supervisor-moved", "no-longer-supervisor", "escalation-handled")
    staff = supervisor if how in supervising else therapist
    cookie = cookies[1](staff)

    async def scenario() -> None:
        sock = await joined(session, cookie)
        if how == "handed-over":
            other = await asyncio.to_thread(_staff, "bernd", Role.THERAPIST, site_de, ["en"])
            appointment = fakes.APPOINTMENTS[session.appointment_ref]
            appointment["therapist_id"] = other.user.pk
            await asyncio.to_thread(services.session_sync_confirmed, appointment=appointment)
        elif how == "supervisor-moved":
            supervisor.user.site = site_es
            await asyncio.to_thread(supervisor.user.save, update_fields=["site"])
        elif how == "no-longer-supervisor":
            supervisor.user.role = Role.THERAPIST
            await asyncio.to_thread(supervisor.user.save, update_fields=["role"])
        elif how == "escalation-handled":
            await asyncio.to_thread(
                services.escalation_resolve, escalation=escalation, supervisor=supervisor.user
            )
        else:
            await asyncio.to_thread(participant.participant.delete)
        assert (await asyncio.wait_for(sock.until("__closed__"), 2))["code"] == 4403
        await sock.close()

    asyncio.run(scenario())


def test_a_therapist_admits_through_the_socket_after_the_session_was_read_again(
    book, participant, therapist, cookies
):
    """``admit`` reads the therapist on a reader thread: the session a poll or a resync
    read again (with the appointment source wired) holds no therapist row for the loop."""
    session = book(participant.participant, therapist.user)
    services.session_enter(session=session, role="participant")
    cookie = cookies[1](therapist)

    async def scenario() -> dict:
        sock = Socket(path(session), cookie=cookie)
        assert await sock.connect()
        assert (await sock.receive())["state"] == "waiting"
        await sock.send({"type": "hello", "after": 0})  # read again, without its therapist
        await sock.until("caught_up")
        await sock.send({"type": "admit"})
        frame = await sock.until("state")
        await sock.close()
        return frame

    with mock.patch.object(sockets_module, "_reload", lambda *, pk: ChatSession.objects.get(pk=pk)):
        assert asyncio.run(scenario())["state"] == "live"


def test_a_sign_in_bookkeeping_save_wakes_no_socket(therapist):
    """A save at sign-in (the last login, failed attempts) changes nothing a socket depends
    on; any other save of a member of staff's account re-checks their sockets."""
    published: list[tuple[int, dict]] = []
    with mock.patch.object(services, "publish_on_commit", lambda *a: published.append(a)):
        therapist.user.save(update_fields=["last_login", "failed_logins"])
        assert published == []
        therapist.user.save(update_fields=["site"])
    assert published == [(0, {"t": "recheck", "who": [f"staff-{therapist.user.pk}"]})]


def test_the_timer_warns_and_forces_the_end(settings, live, participant, cookies):
    settings.CHAT_SESSION_SECONDS = 2
    settings.CHAT_WARNING_SECONDS = 1
    settings.CHAT_GRACE_SECONDS = 1
    settings.CHAT_TICK_SECONDS = 1

    pc = cookies[0](participant)

    async def scenario() -> None:
        p = await joined(live, pc)
        frames = [await p.receive()]
        while frames[-1]["type"] != "state":
            frames.append(await p.receive())
        assert frames[-1]["state"] == "ended"
        warnings = [f["remaining"] for f in frames if f["type"] == "warning"]
        assert len(warnings) == 1 and warnings[0] <= 1
        assert [f for f in frames if f["type"] == "tick"]  # the countdown, while live
        await p.close()

    asyncio.run(scenario())
    live.refresh_from_db()
    assert (live.state, live.ended_by) == (SessionState.ENDED, "timer")


def test_a_lone_surrogate_is_dropped_from_a_message_and_the_writer_lives_on(
    live, participant, cookies
):
    """JSON can carry half of a UTF-16 pair ("\\ud800"); no encoding can store it. It once
    failed the message's encryption and stopped the process's writer thread."""
    pc = cookies[0](participant)

    async def scenario() -> None:
        p = await joined(live, pc)
        await p.send('{"type":"send","client_id":"c-participant-1","body":"I am worried \\ud800"}')
        assert (await p.until("ack"))["seq"] == 1
        await p.send('{"type":"send","client_id":"c-participant-2","body":"\\udfff"}')
        error = await p.until("error")  # nothing is left of it
        assert (error["code"], error["client_id"]) == ("invalid", "c-participant-2")
        await p.send({"type": "send", "client_id": "c-participant-3", "body": WORRY})
        assert (await p.until("ack"))["seq"] == 2
        await p.close()

    asyncio.run(scenario())
    assert [m.body for m in selectors.messages_after(session_id=live.pk, after=0)] == [
        "I am worried ",
        WORRY,
    ]


def test_a_fault_of_ours_closes_the_connection_and_logs_no_content(
    live, participant, cookies, caplog
):
    """A connection whose reading task met an unexpected fault is closed (1011), not left
    open and deaf; the client reconnects and catches up. The log quotes no frame."""
    pc = cookies[0](participant)

    async def scenario() -> None:
        p = await joined(live, pc)
        with mock.patch.object(Connection, "on_ping", side_effect=RuntimeError(WORRY)):
            await p.send({"type": "ping"})
            assert (await p.until("__closed__"))["code"] == 1011
        p = await joined(live, pc)  # a new connection works
        await p.send({"type": "ping"})
        assert (await p.until("pong"))["type"] == "pong"
        await p.close()

    asyncio.run(scenario())
    faults = [r.getMessage() for r in caplog.records if r.name == "stopcsam.chat.sockets"]
    assert len(faults) == 1 and faults[0].startswith("chat socket: RuntimeError at ")
    assert WORRY not in caplog.text


def test_a_send_during_a_database_outage_gets_an_error_not_an_ack(live, participant, cookies):
    pc = cookies[0](participant)

    async def scenario() -> None:
        p = await joined(live, pc)
        with mock.patch(
            "stopcsam.chat.services.message_clean", side_effect=OperationalError("down")
        ):
            await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
            frame = await p.until("error")
        assert (frame["code"], frame["client_id"]) == ("unavailable", "c-participant-1")
        await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        assert (await p.until("ack"))["seq"] == 1  # the retry works once the database is back
        await p.close()

    asyncio.run(scenario())


def test_every_staff_hello_is_one_audited_read_with_what_it_replayed(
    live, participant, therapist, cookies
):
    """One audited read per staff ``hello``, naming where its replay began and how many
    messages it showed; the socket's connection itself reads no transcript."""
    reads = AuditEvent.objects.filter(action="chat.transcript_read")
    pc, tc = cookies[0](participant), cookies[1](therapist)

    async def scenario() -> None:
        p = await joined(live, pc)
        for n in range(3):
            await p.send({"type": "send", "client_id": f"c-participant-{n}", "body": WORRY})
            await p.until("ack")
        await p.close()
        assert await reads.acount() == 0  # the participant's own chat is no staff read
        t = Socket(path(live), cookie=tc)  # a reconnect that missed two
        assert await t.connect()
        assert await reads.acount() == 0  # the connection alone reads nothing
        await t.send({"type": "hello", "after": 1})
        frames = [await t.receive()]
        while frames[-1]["type"] != "caught_up":
            frames.append(await t.receive())
        assert [f["seq"] for f in frames if f["type"] == "message"] == [2, 3]
        await t.close()
        t = await joined(live, tc, after=3)  # the page showed all three
        await t.close()

    asyncio.run(scenario())
    rows = list(reads.order_by("seq"))
    assert {(r.actor, r.subject) for r in rows} == {(therapist.user.audit_ref, live.audit_ref)}
    assert [r.detail for r in rows] == [
        {"via": "socket.therapist", "after": 1, "messages": 2},
        {"via": "socket.therapist", "after": 3, "messages": 0},
    ]


def test_a_console_view_with_javascript_is_one_audited_read(
    live, participant, therapist, cookies, staff_client
):
    """The console page's audited read covers its own socket's hello, which replays
    nothing; a hello that replays messages, or comes too late, is a read of its own."""
    reads = AuditEvent.objects.filter(action="chat.transcript_read")
    pc = cookies[0](participant)
    browser = staff_client(therapist)
    tc = f"sid={browser.cookies['sid'].value}"
    console = reverse("chat:console", args=[live.public_id])

    async def send(n: int) -> None:
        p = await joined(live, pc, after=n - 1)
        await p.send({"type": "send", "client_id": f"c-participant-{n}", "body": WORRY})
        await p.until("ack")
        await p.close()

    async def hello(after: int) -> None:
        t = await joined(live, tc, after=after)
        await t.close()

    asyncio.run(send(1))
    assert browser.get(console).status_code == 200
    asyncio.run(hello(after=1))  # the page's own socket
    assert [r.detail["via"] for r in reads] == ["console.therapist"]
    assert browser.get(console).status_code == 200
    asyncio.run(send(2))  # a message after the page was shown: the hello replays it
    asyncio.run(hello(after=1))
    with mock.patch.object(selectors, "PAGE_READ_SECONDS", 1):  # the cache's own expiry,
        assert browser.get(console).status_code == 200  # in-process or Redis's
    time.sleep(1.5)  # a page read too old
    asyncio.run(hello(after=2))
    assert [r.detail["via"] for r in reads.order_by("seq")] == [
        "console.therapist",
        "console.therapist",
        "socket.therapist",
        "console.therapist",
        "socket.therapist",
    ]


def test_one_page_read_does_not_cover_a_second_socket(
    live, participant, therapist, cookies, staff_client
):
    """One console page read, then two sockets of the same sign-in (two tabs, or a script):
    the page's read covers one hello, the second is a read of its own (a review finding: it
    wrote no row, and received the session live)."""
    reads = AuditEvent.objects.filter(action="chat.transcript_read")
    pc = cookies[0](participant)
    browser = staff_client(therapist)
    tc = f"sid={browser.cookies['sid'].value}"

    async def send() -> None:
        p = await joined(live, pc)
        await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        await p.until("ack")
        await p.close()

    asyncio.run(send())
    assert browser.get(reverse("chat:console", args=[live.public_id])).status_code == 200

    async def two_sockets() -> None:
        first = await joined(live, tc, after=1)  # the page's own socket
        second = await joined(live, tc, after=1)  # another socket: a read of its own
        p = await joined(live, pc, after=1)
        await p.send({"type": "send", "client_id": "c-participant-2", "body": WORRY})
        assert (await second.until("message"))["body"] == WORRY  # stored content, live
        for s in (first, second, p):
            await s.close()

    asyncio.run(two_sockets())
    vias = [r.detail["via"] for r in reads.order_by("seq")]
    assert vias == ["console.therapist", "socket.therapist"]  # the second hello's


def test_an_auto_refreshing_console_does_not_keep_the_sign_in_alive(live, therapist, staff_client):
    """SESSION_COOKIE_AGE (8 h) bounds a staff sign-in: the session row expires 8 h after its
    last change. A console render that noted its read in the session pushed the expiry
    forward on every refresh of a no-JS console, for ever (a review finding)."""
    browser = staff_client(therapist)
    key = browser.cookies["sid"].value
    console = reverse("chat:console", args=[live.public_id]) + "?auto=1"
    assert browser.get(console).status_code == 200  # first read: the key is written
    soon = timezone.now() + timedelta(minutes=5)
    Session.objects.filter(session_key=key).update(expire_date=soon)
    assert browser.get(console).status_code == 200  # an auto-refresh, a few seconds later
    assert Session.objects.get(session_key=key).expire_date <= soon


def test_a_supervisor_reading_along_from_the_first_message_is_audited(
    settings, live, participant, supervisor, cookies
):
    """A socket opened without the console page, before any message, receives the whole
    session live: its hello is an audited read (a review finding: it left no trace)."""
    settings.CHAT_READ_ALONG_SITES = ["DE"]
    live.read_along = True
    live.save(update_fields=["read_along"])
    pc, sc = cookies[0](participant), cookies[1](supervisor)

    async def scenario() -> None:
        s = await joined(live, sc)
        p = await joined(live, pc)
        await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        assert (await s.until("message"))["body"] == WORRY
        await p.close()
        await s.close()

    asyncio.run(scenario())
    (row,) = AuditEvent.objects.filter(action="chat.transcript_read")
    assert (row.actor, row.detail["via"]) == (supervisor.user.audit_ref, "socket.read_along")


def test_a_supervisor_reading_an_escalated_session_is_audited_as_such(
    live, participant, therapist, supervisor, cookies
):
    """A supervisor who reads a session through an escalation (no read-along: the
    participant was not told of one) reads it live too; the socket's audited read said
    "socket.read_along", as if read under the read-along the participant is told of, where
    the console's read of the same page said "console.escalated" (a review finding)."""
    services.escalation_raise(session=live, raised_by=therapist.user, reason="Please review")
    pc, sc = cookies[0](participant), cookies[1](supervisor)

    async def scenario() -> None:
        s = await joined(live, sc)
        p = await joined(live, pc)
        await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        assert (await s.until("message"))["body"] == WORRY
        await s.send({"type": "send", "client_id": "c-supervisor-1", "body": "Hello"})
        assert (await s.until("error"))["code"] == "forbidden"  # read-only all the same
        await p.close()
        await s.close()

    asyncio.run(scenario())
    (row,) = AuditEvent.objects.filter(action="chat.transcript_read")
    assert (row.actor, row.detail["via"]) == (supervisor.user.audit_ref, "socket.escalated")


def test_typing_and_read_markers_reach_the_other_side(live, participant, therapist, cookies):
    pc = cookies[0](participant)
    tc = cookies[1](therapist)

    async def scenario() -> None:
        p = await joined(live, pc)
        t = await joined(live, tc)
        await p.send({"type": "typing", "active": True})
        assert await t.until("typing") == {
            "type": "typing",
            "sender": "participant",
            "active": True,
        }
        await t.send({"type": "send", "client_id": "c-therapist-1", "body": "How was your week?"})
        await p.until("message")
        await p.send({"type": "read", "seq": 1})
        assert await t.until("read") == {"type": "read", "sender": "participant", "seq": 1}
        await p.close()
        await t.close()
        again = Socket(path(live), cookie=tc)
        assert await again.connect()
        state = await again.receive()
        assert (state["type"], state["read"]) == ("state", 1)  # shown again after a reload
        await again.close()

    asyncio.run(scenario())
    live.refresh_from_db()
    assert live.participant_read_seq == 1


def test_a_client_that_leaves_while_typing_stops_showing_as_typing(
    live, participant, therapist, cookies
):
    pc, tc = cookies[0](participant), cookies[1](therapist)

    async def scenario() -> None:
        p = await joined(live, pc)
        t = await joined(live, tc)
        await p.send({"type": "typing", "active": True})
        assert (await t.until("typing"))["active"] is True
        await p.close()  # the tab closed mid-sentence
        assert await t.until("typing", timeout=2) == {
            "type": "typing",
            "sender": "participant",
            "active": False,
        }
        await t.close()

    asyncio.run(scenario())


async def stored_read(session, column: str, seq: int) -> None:
    """Wait until the writer has stored (and so published) a read marker."""

    def stored() -> bool:
        return ChatSession.objects.filter(pk=session.pk, **{column: seq}).exists()

    for _ in range(100):
        if await asyncio.to_thread(stored):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{column} never reached {seq}")


def test_a_read_marker_rides_on_the_next_message_or_ack_and_then_never_comes_alone(
    settings, live, participant, therapist, cookies
):
    settings.CHAT_READ_HOLD_SECONDS = 0.6
    pc = cookies[0](participant)
    tc = cookies[1](therapist)

    async def scenario() -> None:
        p = await joined(live, pc)
        t = await joined(live, tc)
        await t.send({"type": "send", "client_id": "c-therapist-1", "body": "How was your week?"})
        assert (await t.until("ack"))["read"] is None
        await p.until("message")
        await p.send({"type": "read", "seq": 1})
        await stored_read(live, "participant_read_seq", 1)
        await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        got = await t.receive()  # the next frame to the therapist, with the marker on it
        assert (got["type"], got["seq"], got["read"]) == ("message", 2, 1)
        await p.send({"type": "read", "seq": 1})  # nothing new: no marker at all
        await t.send({"type": "send", "client_id": "c-therapist-2", "body": "Thank you."})
        assert (await t.receive()) | {"sent_at": None} == {
            "type": "ack",
            "client_id": "c-therapist-2",
            "seq": 3,
            "duplicate": False,
            "sent_at": None,
            "read": None,
        }
        with pytest.raises(TimeoutError):  # told once: the held frame was called off
            await t.receive(timeout=1.0)
        await p.until("message")
        await p.send({"type": "read", "seq": 3})
        await stored_read(live, "participant_read_seq", 3)
        await p.send({"type": "send", "client_id": "c-participant-2", "body": WORRY})
        await p.until("ack")
        got = await t.receive()
        assert (got["type"], got["read"]) == ("message", 3)
        await p.close()
        await t.close()

    asyncio.run(scenario())


def test_a_held_read_marker_comes_alone_when_nothing_else_goes_to_that_side(
    settings, live, participant, therapist, cookies
):
    settings.CHAT_READ_HOLD_SECONDS = 0.5
    pc = cookies[0](participant)
    tc = cookies[1](therapist)

    async def scenario() -> None:
        p = await joined(live, pc)
        t = await joined(live, tc)
        await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        await p.until("ack")
        await t.until("message")
        sent = asyncio.get_running_loop().time()
        await t.send({"type": "read", "seq": 1})
        got = await p.receive(timeout=3)
        assert got == {"type": "read", "sender": "therapist", "seq": 1}  # sent on its own ...
        # ... after being held for a while: the hold begins after the send (once the writer
        # stored the marker), so this bound holds however slowly the test polls.
        assert asyncio.get_running_loop().time() - sent >= 0.5
        await p.close()
        await t.close()

    asyncio.run(scenario())


def test_a_supervisor_reading_along_sees_both_sides_read_markers_at_once(
    settings, live, participant, therapist, supervisor, cookies
):
    settings.CHAT_READ_ALONG_SITES = ["DE"]
    settings.CHAT_READ_HOLD_SECONDS = 30
    live.read_along = True
    live.save(update_fields=["read_along"])
    pc = cookies[0](participant)
    tc = cookies[1](therapist)
    sc = cookies[1](supervisor)

    async def scenario() -> None:
        p = await joined(live, pc)
        t = await joined(live, tc)
        s = await joined(live, sc)
        await p.send({"type": "send", "client_id": "c-participant-1", "body": WORRY})
        await t.until("message")
        await s.until("message")
        await t.send({"type": "read", "seq": 1})
        got = await s.receive(timeout=3)
        assert got == {"type": "read", "sender": "therapist", "seq": 1}
        for sock in (p, t, s):
            await sock.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("allowed", "told"),
    [(False, False), (False, True), (True, True)],
    ids=["site-not-listed", "site-taken-off-the-list", "reading-along"],
)
def test_a_supervisor_joins_only_to_read_along_and_may_do_nothing_else(
    allowed, told, settings, live, participant, supervisor, cookies
):
    """A supervisor of the same site joins only where the participant was told (the
    session's flag) and the site still allows reading along, and then may not write, admit or
    end."""
    settings.CHAT_READ_ALONG_SITES = ["DE"] if allowed else []
    live.read_along = told
    live.save(update_fields=["read_along"])
    sc = cookies[1](supervisor)

    async def scenario() -> None:
        sock = Socket(path(live), cookie=sc)
        if not allowed:
            assert not await sock.connect()
            assert sock.close_code == 4403
            return
        s = await joined(live, sc)
        for frame in (
            {"type": "send", "client_id": "c-supervisor-1", "body": WORRY},
            {"type": "admit"},
            {"type": "end"},
        ):
            await s.send(frame)
            assert (await s.until("error"))["code"] == "forbidden"
        await s.close()

    asyncio.run(scenario())
    live.refresh_from_db()
    assert live.state == SessionState.LIVE and not ChatMessage.objects.exists()


def test_every_client_frame_type_has_a_schema_that_refuses_extras():
    for frame_type, schema in CLIENT_FRAMES.items():
        frame = {"type": frame_type, **{name: _sample(field) for name, field in schema.items()}}
        assert parse_client_frame(json.dumps(frame)) == frame
        with pytest.raises(FrameError):
            parse_client_frame(json.dumps({**frame, "surprise": 1}))


def _sample(field):  # type: ignore[no-untyped-def]
    types = field[0]
    return {int: 1, str: "client-0001", bool: True}[types]


def test_a_session_not_yet_open_cannot_be_joined(book, participant, therapist, cookies):
    session = book(participant.participant, therapist.user, starts_in=timedelta(hours=2))

    pc = cookies[0](participant)

    async def scenario() -> None:
        sock = Socket(path(session), cookie=pc)
        assert not await sock.connect()

    asyncio.run(scenario())
    session.refresh_from_db()
    assert session.state == SessionState.SCHEDULED


def test_a_recheck_redis_lost_is_made_good_by_every_socket_checking_its_own(
    settings, live, participant, therapist, participant_client, staff_client
):
    """A logout while Redis was away: the hub owes EVERYONE a resync, and every socket of
    the process then checks its sign-in; the one signed out closes, the other stays."""
    settings.CHAT_TICK_SECONDS = 60
    as_participant, as_therapist = participant_client(participant), staff_client(therapist)
    key = as_participant.cookies["sid"].value

    async def scenario() -> None:
        p = await joined(live, f"sid={key}")
        t = await joined(live, f"sid={as_therapist.cookies['sid'].value}")
        # Signed out with no recheck published (a queryset delete sends no signal).
        await asyncio.to_thread(Session.objects.filter(session_key=key).delete)
        get_hub().deliver(0, {"t": "resync"})  # what the hub sends when Redis is back
        assert (await asyncio.wait_for(p.until("__closed__"), 2))["code"] == 4403
        await t.send({"type": "ping"})
        assert (await t.until("pong"))["type"] == "pong"
        await t.close()

    asyncio.run(scenario())
