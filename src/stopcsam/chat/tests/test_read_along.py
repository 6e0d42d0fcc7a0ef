"""Reading along is live. A supervisor of a site that reads along could open every session
flagged for it once it was over (ended, cancelled, past its forced end), through the console
page and the socket: a finished transcript read with no reason, audited as "read_along", of
which the participant, told on the live page only, knew nothing (a review finding). A
finished session is open to a supervisor only through an open escalation, audited as such."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.urls import reverse

from stopcsam.chat import services
from stopcsam.chat.models import ChatSession
from stopcsam.chat.tests.test_sockets import joined
from stopcsam.chat.tests.wsharness import Socket, path
from stopcsam.core import clock
from stopcsam.core.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

WORRY = "I am worried about my urges"
OVER = "This session is over, and so is reading along with it."
CONSOLE_PAGES = ("", "?auto=1", "?auto=0")  # with JavaScript, and the two pages without it


def console_url(session: ChatSession) -> str:
    return reverse("chat:console", args=[session.public_id])


def reads() -> list[tuple[str, str]]:
    rows = AuditEvent.objects.filter(action="chat.transcript_read").order_by("seq")
    return [(row.actor, row.detail["via"]) for row in rows]


@pytest.fixture
def told(settings, live, participant, therapist):  # type: ignore[no-untyped-def]
    """A live session of a site that reads along, whose participant is told so, with a
    message in it."""
    settings.CHAT_READ_ALONG_SITES = ["DE"]
    live.read_along = True
    live.save(update_fields=["read_along"])
    services.message_send(
        session_id=live.pk, sender="participant", client_id="c-participant-1", body=WORRY
    )
    return live


def _over(session: ChatSession, how: str) -> None:
    if how == "ended":
        services.session_end(session=session, ended_by="therapist", actor="staff:1")
    elif how == "cancelled":
        services.session_cancel(session=session)
    else:  # past its forced end, which no sweep has marked yet
        long_ago = clock.now() - timedelta(hours=2)
        ChatSession.objects.filter(pk=session.pk).update(admitted_at=long_ago)


@pytest.mark.parametrize("how", ["ended", "cancelled", "past-its-forced-end"])
def test_a_supervisor_reads_along_no_further_than_the_session(
    how, told, participant, supervisor, staff_client, participant_client
):
    reader = staff_client(supervisor)
    assert WORRY in reader.get(console_url(told)).content.decode()  # live: reading along
    _over(told, how)

    for page in CONSOLE_PAGES:
        response = reader.get(console_url(told) + page, follow=True)
        shown = response.content.decode()
        assert response.redirect_chain[-1][0] == reverse("chat:escalations")
        assert OVER in shown and WORRY not in shown
    refused = reader.post(
        console_url(told), {"body": WORRY, "client_id": "c-supervisor-1"}, follow=True
    )
    assert OVER in refused.content.decode()
    assert reads() == [(supervisor.user.audit_ref, "console.read_along")]  # the live read only
    if how == "ended":  # the participant, told of no reader after the session, had none
        ended = participant_client(participant).get(reverse("chat:session", args=[told.public_id]))
        assert "supervisor" not in ended.content.decode()


def test_a_site_that_does_not_read_along_shows_a_supervisor_nothing(
    settings, live, participant, supervisor, staff_client, participant_client
):
    settings.CHAT_READ_ALONG_SITES = []
    services.message_send(
        session_id=live.pk, sender="participant", client_id="c-participant-1", body=WORRY
    )
    assert not live.read_along
    page = participant_client(participant).get(reverse("chat:session", args=[live.public_id]))
    assert "supervisor" not in page.content.decode()  # told of no reader: there is none
    reader = staff_client(supervisor)
    for page_query in CONSOLE_PAGES:
        assert reader.get(console_url(live) + page_query).status_code == 404
    assert reads() == []


def test_a_finished_session_is_read_through_an_open_escalation_and_audited_as_such(
    told, therapist, supervisor, staff_client
):
    escalation = services.escalation_raise(session=told, raised_by=therapist.user, reason="Risk")
    services.session_end(session=told, ended_by="therapist", actor="staff:1")
    reader = staff_client(supervisor)

    shown = reader.get(console_url(told)).content.decode()

    assert WORRY in shown and "because its therapist escalated it to you" in shown
    assert "reading along" not in shown
    assert reads() == [(supervisor.user.audit_ref, "console.escalated")]  # one read, its reason
    services.escalation_resolve(escalation=escalation, supervisor=supervisor.user)
    after = reader.get(console_url(told), follow=True).content.decode()
    assert OVER in after and WORRY not in after
    assert len(reads()) == 1


@pytest.mark.parametrize("escalated", [False, True], ids=["no-reason", "open-escalation"])
def test_a_socket_opens_on_a_finished_session_only_through_an_open_escalation(
    escalated, told, therapist, supervisor, cookies
):
    if escalated:
        services.escalation_raise(session=told, raised_by=therapist.user, reason="Risk")
    services.session_end(session=told, ended_by="therapist", actor="staff:1")
    sc = cookies[1](supervisor)

    async def scenario() -> None:
        if not escalated:
            sock = Socket(path(told), cookie=sc)
            assert not await sock.connect()
            assert sock.close_code == 4403
            return
        s = await joined(told, sc)
        await s.close()

    asyncio.run(scenario())
    expected = [(supervisor.user.audit_ref, "socket.escalated")] if escalated else []
    assert reads() == expected


def test_a_socket_reading_along_closes_when_the_session_ends(settings, told, supervisor, cookies):
    settings.CHAT_TICK_SECONDS = 0.1
    sc = cookies[1](supervisor)

    async def scenario() -> None:
        s = await joined(told, sc)
        await asyncio.to_thread(
            services.session_end, session=told, ended_by="therapist", actor="staff:1"
        )
        assert (await s.until("state"))["state"] == "ended"
        assert (await asyncio.wait_for(s.until("__closed__"), 3))["code"] == 4403
        await s.close()

    asyncio.run(scenario())
    assert reads() == [(supervisor.user.audit_ref, "socket.read_along")]  # its hello, once
