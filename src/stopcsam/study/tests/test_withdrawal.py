from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, connections, transaction
from django.test import Client

from stopcsam.accounts.models import Participant
from stopcsam.conftest import ParticipantPersona
from stopcsam.core import clock
from stopcsam.core.models import AuditEvent
from stopcsam.core.signals import session_outcome
from stopcsam.study.exceptions import QuestionnaireNotDueError
from stopcsam.study.models import ConsentRecord, Enrolment, ProtocolVersion, Response
from stopcsam.study.selectors import consort_counts, parsed_protocol
from stopcsam.study.services import randomize, response_save, withdraw
from stopcsam.study.tests.conftest import enrolled

pytestmark = pytest.mark.django_db


def _answered(version: ProtocolVersion) -> Enrolment:
    enrolment = enrolled(version)
    instrument = parsed_protocol(version).instruments["urge"]
    response_save(
        enrolment=enrolment,
        time_point="baseline",
        instrument=instrument,
        answers={"urge_strength": 2, "urge_days": 1},
        complete=True,
    )
    randomize(enrolment=enrolment)
    return enrolment


def _client_for(enrolment: Enrolment, participant_client: Callable[..., Client]) -> Client:
    return participant_client(ParticipantPersona(enrolment.participant, ""))


def test_stopping_keeps_the_data_and_is_audited(
    version: ProtocolVersion, participant_client: Callable[..., Client]
) -> None:
    enrolment = _answered(version)
    client = _client_for(enrolment, participant_client)
    refused = client.post("/en/study/withdraw/", {"choice": "stop"})
    assert refused.status_code == 400 and Enrolment.objects.get().status == "randomized"
    assert (
        client.post("/en/study/withdraw/", {"choice": "stop", "confirm": "on"}).status_code == 302
    )
    enrolment.refresh_from_db()
    assert enrolment.status == "withdrawn" and not enrolment.chat_offered
    assert Response.objects.count() == 1 and ConsentRecord.objects.count() == 1
    assert AuditEvent.objects.filter(action="study.withdrawn").count() == 1
    assert "stopped taking part" in client.get("/en/study/").content.decode()


def test_one_who_stopped_is_shown_the_way_to_erase_later(
    version: ProtocolVersion, participant_client: Callable[..., Client]
) -> None:
    """Stopping and keeping the answers is not final: the page a participant who stopped
    lands on links to erasing them (it said only "thank you", and their space is that page,
    so erasure after a stop could not be found)."""
    client = _client_for(_answered(version), participant_client)
    client.post("/en/study/withdraw/", {"choice": "stop", "confirm": "on"})
    body = client.get("/en/study/").content.decode()
    assert 'href="/en/study/withdraw/"' in body
    assert "Erase my answers and my account" in body
    client.post("/en/study/withdraw/", {"choice": "erase", "confirm": "on"})
    assert Participant.objects.count() == 0 and Response.objects.count() == 0


def test_stopping_tells_scheduling_once(
    version: ProtocolVersion, participant_client: Callable[..., Client]
) -> None:
    """Scheduling cancels the sessions still to come when it hears this (its own test)."""
    from stopcsam.core.signals import participant_withdrawn

    heard: list[int] = []

    def receiver(sender: object, *, participant_id: int, **kwargs: object) -> None:
        heard.append(participant_id)

    participant_withdrawn.connect(receiver, weak=False)
    try:
        enrolment = _answered(version)
        client = _client_for(enrolment, participant_client)
        for _ in range(2):  # "stop" pressed again tells nothing
            client.post("/en/study/withdraw/", {"choice": "stop", "confirm": "on"})
    finally:
        participant_withdrawn.disconnect(receiver)
    assert heard == [enrolment.participant_id]


def test_stop_and_erase_deletes_every_row(
    version: ProtocolVersion, participant_client: Callable[..., Client]
) -> None:
    enrolment = _answered(version)
    client = _client_for(enrolment, participant_client)
    response = client.post("/en/study/withdraw/", {"choice": "erase", "confirm": "on"})
    assert response.status_code == 200 and "Everything is erased" in response.content.decode()
    for model in (Participant, Enrolment, ConsentRecord, Response):
        assert model.objects.count() == 0, model
    assert AuditEvent.objects.filter(action="study.withdrawn_and_erased").count() == 1
    assert client.get("/en/study/")["Location"].startswith("/en/login/")
    counts = consort_counts(version)
    assert sum(counts["randomized"].values()) == 1  # the count survives, the person does not
    assert counts["withdrawn"] == {"stop": 0, "erase": 1}


def test_answers_sent_after_erasing_from_another_tab_are_refused(
    version: ProtocolVersion,
) -> None:
    """The questionnaire page read the enrolment before "stop and erase" in another tab;
    saving its answers afterwards is refused as not due, and stores nothing."""
    enrolment = enrolled(version)
    read_by_the_page = Enrolment.objects.get(pk=enrolment.pk)
    withdraw(enrolment=enrolment, erase=True)
    with pytest.raises(QuestionnaireNotDueError):
        response_save(
            enrolment=read_by_the_page,
            time_point="baseline",
            instrument=parsed_protocol(version).instruments["urge"],
            answers={"urge_strength": 2, "urge_days": 1},
            complete=True,
        )
    assert not Response.objects.exists() and not Enrolment.objects.exists()


def test_the_erased_page_offers_no_account_that_is_gone(
    version: ProtocolVersion, participant_client: Callable[..., Client]
) -> None:
    """After "stop and erase" the page is a signed-out one: no "Your space" link and no
    "Log out" button for an account that no longer exists."""
    client = _client_for(_answered(version), participant_client)
    response = client.post("/en/study/withdraw/", {"choice": "erase", "confirm": "on"})
    body = response.content.decode()
    assert "Everything is erased" in body
    assert 'action="/en/logout/"' not in body and "Your space" not in body


def test_a_bad_withdrawal_choice_is_refused(
    version: ProtocolVersion, participant_client: Callable[..., Client]
) -> None:
    client = _client_for(_answered(version), participant_client)
    response = client.post("/en/study/withdraw/", {"choice": "maybe", "confirm": "on"})
    assert response.status_code == 400 and Participant.objects.count() == 1


def test_consort_counts_follow_the_flow(version: ProtocolVersion) -> None:
    from stopcsam.study.services import screening_evaluate

    ok = {"age": 30, "recent_use": "yes", "language": "en", "in_treatment": "no"}
    for answers in [ok, ok, {**ok, "age": 17}, {**ok, "in_treatment": "yes"}]:
        screening_evaluate(version=version, answers=answers, language="en")
    first, second = _answered(version), _answered(version)
    session_outcome.send(
        sender=None, participant_id=first.participant_id, appointment_ref="a1", outcome="attended"
    )
    session_outcome.send(
        sender=None, participant_id=second.participant_id, appointment_ref="a2", outcome="no_show"
    )
    counts = consort_counts(version)
    assert counts["assessed"] == 4 and counts["excluded"] == 2
    assert counts["excluded_reasons"] == {"under_18": 1, "already_in_treatment": 1}
    assert sum(counts["randomized"].values()) == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.sessions_attended, second.sessions_missed) == (1, 1)
    chat_received = counts["received_allocated_intervention"]["chat"]
    assert chat_received == (1 if first.arm == "chat" else 0)
    assert counts["analysed"] == {"chat": 0, "waitlist": 0}


def test_each_participant_is_counted_once_in_the_flow_diagram(
    version: ProtocolVersion, participant_client: Callable[..., Client]
) -> None:
    """Stop pressed three times, then erase: one withdrawal, counted when they stopped."""
    client = _client_for(_answered(version), participant_client)
    for _ in range(3):
        client.post("/en/study/withdraw/", {"choice": "stop", "confirm": "on"})
    client.post("/en/study/withdraw/", {"choice": "erase", "confirm": "on"})
    assert consort_counts(version)["withdrawn"] == {"stop": 1, "erase": 0}
    assert AuditEvent.objects.filter(action="study.withdrawn").count() == 1


def test_deleting_the_account_counts_as_a_withdrawal_with_erasure(
    version: ProtocolVersion, participant_client: Callable[..., Client]
) -> None:
    client = _client_for(_answered(version), participant_client)
    assert client.post("/en/me/delete/", {"confirm": "on"}).status_code == 302
    assert not Participant.objects.exists()
    assert consort_counts(version)["withdrawn"] == {"stop": 0, "erase": 1}
    assert AuditEvent.objects.filter(action="study.withdrawn_and_erased").count() == 1


def test_consort_analyses_the_arms_at_the_primary_time_point(version: ProtocolVersion) -> None:
    """Week 4 in the demo: after it the waiting list has the chat too (answers at the
    twelve-week follow-up alone do not count as analysed)."""
    from stopcsam.study.tests.conftest import answered_baseline

    (enrolment,) = answered_baseline(version, participants=1)
    assert parsed_protocol(version).primary_time_point.key == "post"
    for time_point, analysed in [("followup", 0), ("post", 1)]:
        Response.objects.create(
            enrolment=enrolment,
            time_point=time_point,
            instrument="urge",
            instrument_version="1",
            started_at=clock.now(),
            completed_at=clock.now(),
        )
        assert consort_counts(version)["analysed"][enrolment.arm] == analysed


def test_consort_counts_withdrawals_by_arm_once_each_erased_or_not(
    version: ProtocolVersion, participant_client: Callable[..., Client]
) -> None:
    from stopcsam.study.tests.conftest import randomized_to

    stopping, erasing = randomized_to(version, "chat"), randomized_to(version, "waitlist")
    never_randomized = enrolled(version)
    for enrolment, choices in [
        (stopping, ["stop", "stop", "erase"]),  # counted once, when they stopped
        (erasing, ["erase"]),
        (never_randomized, ["stop"]),  # withdrawn, but in no arm
    ]:
        client = _client_for(enrolment, participant_client)
        for choice in choices:
            client.post("/en/study/withdraw/", {"choice": choice, "confirm": "on"})
    counts = consort_counts(version)
    assert counts["withdrawn_by_arm"] == {"chat": 1, "waitlist": 1}
    assert counts["withdrawn"] == {"stop": 2, "erase": 1}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="runs when DATABASE_URL is set")
def test_stop_and_erase_at_once_count_the_withdrawal_once() -> None:
    """ "Stop" in one tab, "stop and erase" in another, at once: the erasure waits for the
    stop's row lock, finds the participant withdrawn, and does not count them again (it read
    the enrolment before the stop committed, and counted both)."""
    from stopcsam.study.demo import demo_definition
    from stopcsam.study.services import protocol_load, withdraw
    from stopcsam.study.tests.conftest import randomized_to

    version = protocol_load(definition=demo_definition())
    enrolment = randomized_to(version, "chat")
    stopped, faults = threading.Event(), []

    def stop() -> None:
        try:
            with transaction.atomic():
                withdraw(enrolment=Enrolment.objects.get(pk=enrolment.pk), erase=False)
                stopped.set()
                time.sleep(0.5)  # the erasure meets the stop uncommitted
        except Exception as fault:
            faults.append(fault)
        finally:
            stopped.set()
            connections.close_all()

    def erase() -> None:
        stopped.wait(10)
        try:
            withdraw(enrolment=Enrolment.objects.get(pk=enrolment.pk), erase=True)
        except Exception as fault:
            faults.append(fault)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=stop), threading.Thread(target=erase)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert faults == []
    assert not Enrolment.objects.filter(pk=enrolment.pk).exists()  # erased all the same
    counts = consort_counts(version)
    assert counts["withdrawn"] == {"stop": 1, "erase": 0}
    assert counts["withdrawn_by_arm"] == {"chat": 1, "waitlist": 0}


def test_stop_and_erase_sent_twice_erases_once(version: ProtocolVersion) -> None:
    """ "Stop and erase" sent twice (a double click with JavaScript off): the second request
    read the enrolment before the first deleted it, then failed on the participant who was
    gone (a server error) instead of finding the work done."""
    enrolment = _answered(version)
    read_by_the_second = Enrolment.objects.get(pk=enrolment.pk)
    withdraw(enrolment=enrolment, erase=True)
    withdraw(enrolment=read_by_the_second, erase=True)
    assert not Participant.objects.exists() and not Enrolment.objects.exists()
    assert AuditEvent.objects.filter(action="study.withdrawn_and_erased").count() == 1
    assert consort_counts(version)["withdrawn"] == {"stop": 0, "erase": 1}
