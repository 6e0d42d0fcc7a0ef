"""Chat limits and guarantees from a review of the protocol (2026-12-01): replays, sockets
per person, the no-JS form in a database outage, scheduling notices, long numbers."""

from __future__ import annotations

import asyncio
import contextlib
from unittest import mock

import pytest
from django.urls import reverse

from stopcsam.chat import services
from stopcsam.chat.models import ChatMessage
from stopcsam.chat.tests.wsharness import Socket, path

pytestmark = pytest.mark.django_db(transaction=True)

WORRY = "I am worried about my urges"


# --- R3-1: one sign-in may open any number of sockets in a session ----------------------------


def test_one_sign_in_cannot_open_any_number_of_sockets_in_a_session(live, participant, cookies):
    """Every socket costs the server memory (40-70 KiB), a tick task, a database poll every
    two ticks and a place in every wake-up of the session; none of that is limited per
    person, so one participant's script holds as many as it likes."""
    pc = cookies[0](participant)

    async def scenario() -> int:
        socks, accepted = [], 0
        for _ in range(25):
            sock = Socket(path(live), cookie=pc)
            if await sock.connect():
                accepted += 1
                socks.append(sock)
        for sock in socks:
            await sock.close()
        return accepted

    accepted = asyncio.run(scenario())
    assert accepted <= 10, f"{accepted} sockets of one person accepted in one session"


# --- R3-2: ?before= with a long number is a server error -------------------------------------


def test_a_long_before_number_is_not_a_server_error(live, participant, participant_client):
    """`_tail` turns ``before`` into an int after isdigit(): 5,000 digits pass the check and
    int() raises ValueError (Python's 4,300-digit limit), an unhandled 500."""
    client = participant_client(participant)
    services.message_send(
        session_id=live.pk, sender="participant", client_id="c-r3-0001", body=WORRY
    )
    url = reverse("chat:session", args=[live.public_id]) + "?before=" + "9" * 5000
    response = client.get(url)
    assert response.status_code == 200
    assert WORRY in response.content.decode()


# --- R3-3: hellos replay the whole transcript ten times a second -----------------------------


def test_repeated_hellos_cannot_replay_a_long_transcript_over_and_over(
    live, participant, participant_client
):
    """A second hello replays again from its own ``after`` (documented), and hellos are only
    held to the frame rate (10 a second, burst 40). Replaying 3,000 messages costs ~0.11 s of
    the event loop's CPU, so one participant's script keeps a process busy, in each of their
    sessions (each has an allowance of its own, and an ended session still takes a socket)."""
    pc = f"sid={participant_client(participant).cookies['sid'].value}"
    requests = [
        services.SendRequest(live.pk, "participant", f"c-r3-{n:06d}", WORRY) for n in range(3000)
    ]
    for start in range(0, len(requests), 100):
        services.messages_send(requests=requests[start : start + 100])

    async def scenario() -> int:
        sock = Socket(path(live), cookie=pc)
        assert await sock.connect()
        for _ in range(20):
            await sock.send({"type": "hello", "after": 0})
        replays = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3.0
        try:
            while (left := deadline - loop.time()) > 0:
                frame = await sock.receive(timeout=left)
                replays += frame["type"] == "caught_up"
        except TimeoutError:
            pass
        assert sock.task is not None
        sock.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sock.task
        return replays

    replays = asyncio.run(scenario())
    assert replays <= 5, f"{replays} full replays of 3,000 messages in 3 s"


def test_a_hello_waiting_its_turn_replays_nothing_after_a_logout(
    live, participant, participant_client
):
    """A hello beyond the replay allowance waits, and holds the connection's turn while it
    does: the recheck that a logout sends its sockets waited behind it, so the replay went
    out after the sign-in had ended, and only then was the socket closed (a review finding).
    docs: a logout closes the sockets of that sign-in at once."""
    from stopcsam.chat import sockets as sockets_module

    for n in range(3):
        services.message_send(
            session_id=live.pk,
            sender="therapist",
            client_id=f"c-therapist-{n}",
            body="How are you?",
        )
    browser = participant_client(participant)
    cookie = f"sid={browser.cookies['sid'].value}"

    async def scenario() -> list[str]:
        sock = Socket(path(live), cookie=cookie)
        assert await sock.connect()
        assert (await sock.receive())["type"] == "state"
        await sock.send({"type": "hello", "after": 0})  # three messages: two beyond the burst
        await asyncio.sleep(0.3)  # waiting its turn (2 s)
        await asyncio.to_thread(browser.post, reverse("accounts:logout"))
        frames = [(await sock.receive())["type"]]
        while frames[-1] != "__closed__":
            frames.append((await sock.receive())["type"])
        assert sock.close_code == 4403
        await sock.close()
        return frames

    with mock.patch.object(sockets_module, "REPLAY_RATE", (1.0, 1)):  # a burst of one message
        frames = asyncio.run(scenario())
    assert frames == ["__closed__"]


# --- R3-4: the form path loses the text when the database refuses the write ------------------


@pytest.mark.parametrize("who", ["participant", "therapist"])
def test_a_posted_message_the_database_refused_is_given_back_with_its_client_id(
    who, live, participant, therapist, participant_client, staff_client
):
    """The socket answers a database fault with ``unavailable`` (no ack; the text is kept and
    sent again with the same client id). The form let the DatabaseError through: a 500 page,
    the text gone, and a retyped message got a new client id (stored twice if the first had
    committed after all)."""
    from django.db import OperationalError

    if who == "participant":
        client, url = (
            participant_client(participant),
            reverse("chat:session", args=[live.public_id]),
        )
    else:
        client, url = staff_client(therapist), reverse("chat:console", args=[live.public_id])
    client.raise_request_exception = False
    form = {"body": WORRY, "client_id": "f-r3-locked01", "action": "send"}
    refused = OperationalError("database is locked")
    with (  # the store of either database refuses
        mock.patch.object(services, "_store", side_effect=refused),
        mock.patch.object(services, "_store_postgresql", side_effect=refused),
    ):
        response = client.post(url, form)
    html = response.content.decode()
    assert response.status_code == 503
    assert WORRY in html and 'value="f-r3-locked01"' in html
    # Sent again as the page offers it: stored once.
    assert client.post(url, form).status_code == 302
    assert client.post(url, form).status_code == 302
    assert ChatMessage.objects.filter(session=live).count() == 1


# --- R3-5: a scheduling hook that fails after the commit is never called again ---------------


def test_a_joined_notice_that_failed_is_given_at_the_next_entry(book, participant, therapist):
    """``notify_joined`` ran on commit: when it failed (the page got a 500, the socket was
    refused), the session was already waiting, and no later entry told scheduling. Fifteen
    minutes after the start scheduling marks a participant nobody said had joined a no-show
    (``no_shows_mark``), and a later ``attended`` no longer changes a no-show."""
    from django.db import OperationalError

    from stopcsam.chat.tests import fakes

    session = book(participant.participant, therapist.user)
    failing = mock.patch.object(fakes, "joined", side_effect=OperationalError("locked"))
    with failing, pytest.raises(OperationalError):
        services.session_enter(session=session, role="participant")
    session.refresh_from_db()
    services.session_enter(session=session, role="participant")  # the page loaded again
    assert [(session.appointment_ref, "participant")] == fakes.JOINED


def test_an_attended_notice_that_failed_is_given_when_the_end_is_tried_again(
    live, participant, therapist, settings
):
    from django.db import OperationalError

    from stopcsam.chat.models import SessionState
    from stopcsam.chat.tests import fakes

    failing = mock.patch.object(fakes, "attended", side_effect=OperationalError("locked"))
    with failing, pytest.raises(OperationalError):
        services.session_end(session=live, ended_by="therapist", actor="staff:1")
    live.refresh_from_db()
    services.session_end(session=live, ended_by="therapist", actor="staff:1")  # clicked again
    live.refresh_from_db()
    assert live.state == SessionState.ENDED
    assert [live.appointment_ref] == fakes.ATTENDED
