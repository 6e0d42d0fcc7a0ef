"""A cancelled appointment: scheduling's source no longer knows it, and its chat closes."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import translation

from stopcsam.accounts.models import Participant
from stopcsam.chat import selectors, services
from stopcsam.chat.exceptions import SessionEndedError
from stopcsam.chat.models import ChatMessage, ChatSession, SessionState
from stopcsam.chat.tests import fakes
from stopcsam.core import clock
from stopcsam.core.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

WORRY = "I am worried about my urges"


def opened(session: ChatSession, participant: Participant) -> ChatSession:
    """The participant opens the session: chat reads its appointment from the source."""
    return selectors.session_for_participant(participant=participant, public_id=session.public_id)


def cancel(session: ChatSession) -> None:
    """Scheduling cancels the appointment: its source answers None from now on."""
    del fakes.APPOINTMENTS[session.appointment_ref]


def send(session: ChatSession, sender: str = "participant", client_id: str = "client-a-1") -> int:
    return services.message_send(
        session_id=session.pk, sender=sender, client_id=client_id, body=WORRY
    ).seq


def test_it_refuses_the_participant_and_the_therapist(book, participant, therapist):
    session = opened(book(participant.participant, therapist.user), participant.participant)
    cancel(session)
    found, _ = selectors.session_for_staff(user=therapist.user, public_id=session.public_id)
    assert found.state == SessionState.CANCELLED
    with pytest.raises(SessionEndedError):
        services.session_enter(session=found, role="participant")
    with pytest.raises(SessionEndedError):
        services.session_admit(session=found, therapist=therapist.user)
    with pytest.raises(SessionEndedError):
        send(found)
    found.refresh_from_db()
    assert found.state == SessionState.CANCELLED
    assert fakes.JOINED == []
    assert AuditEvent.objects.filter(action="chat.cancel", actor="system").count() == 1


def test_it_closes_a_waiting_room_even_through_a_stale_copy(book, participant, therapist):
    session = opened(book(participant.participant, therapist.user), participant.participant)
    services.session_enter(session=session, role="participant")
    stale = ChatSession.objects.get(pk=session.pk)  # a socket's copy: still waiting
    cancel(session)
    opened(session, participant.participant)
    with pytest.raises(SessionEndedError):
        services.session_admit(session=stale, therapist=therapist.user)
    assert ChatSession.objects.get(pk=session.pk).state == SessionState.CANCELLED


def test_a_live_session_stops_taking_messages_and_is_never_attended(live, participant, therapist):
    live = opened(live, participant.participant)
    assert send(live) == 1
    stale = ChatSession.objects.get(pk=live.pk)  # the socket's copy: still live
    cancel(live)
    with mock.patch.object(services, "publish_on_commit") as publish:
        assert opened(live, participant.participant).state == SessionState.CANCELLED
    publish.assert_called_once_with(live.pk, {"t": "state"})  # open sockets are told
    with pytest.raises(SessionEndedError):
        send(stale, client_id="client-a-2")
    with pytest.raises(SessionEndedError):
        send(stale, sender="therapist", client_id="client-b-1")
    services.session_end(session=stale, ended_by="therapist", actor=therapist.user.audit_ref)
    later = clock.now() + timedelta(hours=2)
    with mock.patch("stopcsam.core.clock.now", return_value=later):
        services.session_expire_if_due(session=stale)
    assert ChatSession.objects.get(pk=live.pk).state == SessionState.CANCELLED
    assert ChatMessage.objects.filter(session=live).count() == 1
    assert fakes.ATTENDED == []


def test_a_session_listed_but_never_opened_is_cancelled_too(participant, therapist):
    start = clock.now()
    fakes.APPOINTMENTS["apt-listed"] = {
        "appointment_ref": "apt-listed",
        "participant_id": participant.participant.pk,
        "therapist_id": therapist.user.pk,
        "starts_at": start,
        "ends_at": start + timedelta(minutes=50),
    }
    (session,) = selectors.sessions_of_therapist(user=therapist.user)
    cancel(session)
    assert opened(session, participant.participant).state == SessionState.CANCELLED


def test_a_session_the_source_never_gave_keeps_working(participant, therapist):
    """A benchmark's session: created directly, unknown to the wired source."""
    now = clock.now()
    session = ChatSession.objects.create(
        appointment_ref="bench-0001",
        participant=participant.participant,
        therapist=therapist.user,
        language="en",
        starts_at=now,
        ends_at=now + timedelta(minutes=50),
        state=SessionState.LIVE,
        admitted_at=now,
    )
    session = opened(session, participant.participant)
    assert services.session_enter(session=session, role="participant").state == SessionState.LIVE
    assert send(session) == 1


def test_without_a_source_wired_nothing_is_cancelled(settings, live, participant):
    live = opened(live, participant.participant)
    settings.STOPCSAM_APPOINTMENT_SOURCE = None
    cancel(live)
    live = opened(live, participant.participant)
    assert services.session_enter(session=live, role="participant").state == SessionState.LIVE
    assert send(live) == 1


# --- the pages ---------------------------------------------------------------------------------


def session_url(session: ChatSession) -> str:
    return reverse("chat:session", args=[session.public_id])


def console_url(session: ChatSession) -> str:
    return reverse("chat:console", args=[session.public_id])


def test_the_participant_sees_a_calm_message_and_cannot_post(
    book, participant, therapist, participant_client
):
    session = book(participant.participant, therapist.user)
    client = participant_client(participant)
    assert "Waiting room" in client.get(session_url(session)).content.decode()
    cancel(session)
    page = client.get(session_url(session))
    html = page.content.decode()
    assert page.status_code == 200
    assert "The session has been cancelled." in html
    assert "Waiting room" not in html and "feedback" not in html
    posted = client.post(session_url(session), {"body": WORRY, "client_id": "f-abcdefgh"})
    assert posted.status_code == 400
    assert not ChatMessage.objects.exists()
    assert ChatSession.objects.get(pk=session.pk).state == SessionState.CANCELLED


def test_the_message_is_translated(book, participant, therapist, participant_client):
    session = book(participant.participant, therapist.user)
    client = participant_client(participant)
    client.get(session_url(session))
    cancel(session)
    with translation.override("de"):
        url = session_url(session)
    assert url.startswith("/de/")
    assert "Der Termin wurde abgesagt." in client.get(url).content.decode()


def test_the_therapist_can_neither_admit_nor_write(
    book, participant, therapist, participant_client, staff_client
):
    session = book(participant.participant, therapist.user)
    participant_client(participant).get(session_url(session))  # in the waiting room
    console = staff_client(therapist)
    assert "Admit participant" in console.get(console_url(session)).content.decode()
    cancel(session)
    html = console.get(console_url(session)).content.decode()
    assert "The session has been cancelled." in html and "Admit participant" not in html
    refused = console.post(console_url(session), {"action": "admit"})
    assert refused.status_code == 400
    assert "This session has ended." in refused.content.decode()
    body = {"body": "How was your week?", "client_id": "c-therapist-1"}
    assert console.post(console_url(session), body).status_code == 400
    assert not ChatMessage.objects.exists()
    assert ChatSession.objects.get(pk=session.pk).admitted_at is None


def test_an_open_socket_learns_of_the_cancellation_by_its_safety_poll(
    settings, book, participant, therapist, participant_client
):
    import asyncio

    from stopcsam.chat.tests.wsharness import Socket

    settings.CHAT_TICK_SECONDS = 0.1
    session = opened(book(participant.participant, therapist.user), participant.participant)
    cookie = f"sid={participant_client(participant).cookies['sid'].value}"

    async def scenario() -> None:
        sock = Socket(f"/ws/chat/{session.public_id}", cookie=cookie)
        assert await sock.connect()
        assert (await sock.receive())["state"] == "waiting"
        cancel(session)  # nobody loads a page
        state = await asyncio.wait_for(sock.until("state"), 3)
        assert state["state"] == "cancelled"
        await sock.close()

    asyncio.run(scenario())


def test_a_session_handed_over_leaves_the_first_therapists_list(
    participant, therapist, therapist_es
):
    """The first therapist's list showed a session handed over since its last sync, its link
    a 404: their list now brings such a session in line before it is shown."""
    start = clock.now() + timedelta(hours=1)
    fakes.APPOINTMENTS["apt-handed"] = {
        "appointment_ref": "apt-handed",
        "participant_id": participant.participant.pk,
        "therapist_id": therapist.user.pk,
        "starts_at": start,
        "ends_at": start + timedelta(minutes=50),
    }
    (session,) = selectors.sessions_of_therapist(user=therapist.user)
    fakes.APPOINTMENTS["apt-handed"]["therapist_id"] = therapist_es.user.pk  # handed over
    assert selectors.sessions_of_therapist(user=therapist.user) == []
    assert ChatSession.objects.get(pk=session.pk).therapist_id == therapist_es.user.pk
    (theirs,) = selectors.sessions_of_therapist(user=therapist_es.user)
    assert theirs.pk == session.pk
