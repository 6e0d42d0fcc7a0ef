"""An open escalation whose participant chose "stop and erase" used to vanish from the
supervisor's list unexplained (noticed in session 18): the supervisor could not tell it had
gone, nor follow it up with the therapist. Now it leaves who raised it and when, and nothing
of the participant."""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.db.models.deletion import Collector
from django.db.models.signals import pre_delete
from django.urls import reverse

from stopcsam.accounts.models import Role
from stopcsam.accounts.services import participant_delete
from stopcsam.chat import selectors, services
from stopcsam.chat.exceptions import SessionErasedError
from stopcsam.chat.models import ChatSession, ErasedEscalation, Escalation, SessionNote
from stopcsam.conftest import _staff
from stopcsam.core.models import AuditEvent

RISK = "Please review the risk"


def test_an_open_escalation_erased_with_its_participant_tells_the_supervisor(
    live, participant, therapist, supervisor, site_es, staff_client
):
    services.escalation_raise(session=live, raised_by=therapist.user, reason=RISK)
    handled = services.escalation_raise(session=live, raised_by=therapist.user, reason="Seen")
    services.escalation_resolve(escalation=handled, supervisor=supervisor.user)
    study_id = selectors.study_id(participant_id=participant.participant.pk)

    participant_delete(participant=participant.participant)

    assert not Escalation.objects.exists()
    (erased,) = ErasedEscalation.objects.all()  # the open one only
    assert erased.raised_by == therapist.user
    sabine = staff_client(supervisor)
    page = sabine.get(reverse("chat:escalations")).content.decode()
    assert "Escalations erased with their participant's data" in page
    assert str(therapist.user) in page
    assert "chose to stop and erase" in page and "retention period" not in page
    assert RISK not in page and study_id not in page
    # A supervisor of another site (which has its own) is not reached, and cannot dismiss it.
    pilar = staff_client(_staff("pilar", Role.SUPERVISOR, site_es, ["es"]))
    assert (
        "erased with their participant"
        not in pilar.get(reverse("chat:escalations")).content.decode()
    )
    for who, pk in ((pilar, erased.pk), (sabine, "x")):  # the same answer as for a handled one
        refused = who.post(reverse("chat:escalations"), {"erased": pk}, follow=True)
        assert "That escalation is no longer open." in refused.content.decode()
    assert ErasedEscalation.objects.exists()

    done = sabine.post(reverse("chat:escalations"), {"erased": erased.pk}, follow=True)

    assert "The escalation is marked as handled." in done.content.decode()
    assert not ErasedEscalation.objects.exists()
    assert AuditEvent.objects.filter(action="chat.erased_escalation_handled").count() == 1
    assert "erased with their participant" not in done.content.decode()


def test_an_open_escalation_deleted_by_retention_tells_the_supervisor_why(
    settings, book, participant, therapist, supervisor, staff_client
):
    """Retention deleted a session's open escalations with its transcript and left nothing:
    they vanished from the supervisor's list unexplained, as erasure's did before (a review
    finding). Now the same record is left, saying that retention deleted it."""
    settings.CHAT_RETENTION_DAYS = 30
    settings.STOPCSAM_LAST_TIME_POINTS = None
    old = book(participant.participant, therapist.user, starts_in=timedelta(days=-40))
    services.escalation_raise(session=old, raised_by=therapist.user, reason=RISK)
    handled = services.escalation_raise(session=old, raised_by=therapist.user, reason="Seen")
    services.escalation_resolve(escalation=handled, supervisor=supervisor.user)
    study_id = selectors.study_id(participant_id=participant.participant.pk)

    assert services.sessions_shred_expired() == 1

    assert not Escalation.objects.exists()
    (kept,) = ErasedEscalation.objects.all()  # the open one only
    assert kept.raised_by == therapist.user
    page = staff_client(supervisor).get(reverse("chat:escalations")).content.decode()
    assert "Escalations erased with their participant's data" in page
    assert str(therapist.user) in page
    assert "Deleted at the end of the retention period" in page
    assert "chose to stop and erase" not in page  # the participant asked for nothing
    assert RISK not in page and study_id not in page
    assert services.sessions_shred_expired() == 0  # a later run keeps the record
    assert ErasedEscalation.objects.count() == 1


def test_a_therapist_sees_no_erased_escalations(live, participant, therapist, staff_client):
    services.escalation_raise(session=live, raised_by=therapist.user, reason=RISK)
    participant_delete(participant=participant.participant)
    assert ErasedEscalation.objects.count() == 1
    page = staff_client(therapist).get(reverse("chat:escalations"))
    assert "erased with their participant" not in page.content.decode()
    refused = staff_client(therapist).post(
        reverse("chat:escalations"), {"erased": ErasedEscalation.objects.get().pk}, follow=True
    )
    assert "That escalation is no longer open." in refused.content.decode()
    assert ErasedEscalation.objects.count() == 1


def test_the_spanish_page_speaks_to_the_supervisor_as_every_other_one_does(
    live, participant, therapist, supervisor, staff_client
):
    services.escalation_raise(session=live, raised_by=therapist.user, reason=RISK)
    participant_delete(participant=participant.participant)
    page = staff_client(supervisor).get("/es/chat/console/escalations/").content.decode()
    assert "Habla con el terapeuta" in page  # "tú", not "usted" (a review finding)


def test_a_note_or_escalation_for_a_session_erased_meanwhile_is_refused_and_a_404(
    live, participant, therapist, staff_client
):
    """The therapist's page was loaded before the participant erased everything: saving a
    note or escalating then stored a row for a session that no longer existed (it failed at
    commit on PostgreSQL, a 500)."""
    stale = ChatSession.objects.get(pk=live.pk)
    participant_delete(participant=participant.participant)
    with pytest.raises(SessionErasedError):
        services.escalation_raise(session=stale, raised_by=therapist.user, reason=RISK)
    with pytest.raises(SessionErasedError):
        services.note_save(
            session=stale, author=therapist.user, body="Notes", risk_level="", risk_notes=""
        )
    assert not Escalation.objects.exists() and not SessionNote.objects.exists()
    client = staff_client(therapist)
    with mock.patch("stopcsam.chat.views._staff_session", return_value=(stale, "therapist")):
        escalated = client.post(
            reverse("chat:console_escalate", args=[stale.public_id]), {"reason": RISK}
        )
        noted = client.post(
            reverse("chat:console_notes", args=[stale.public_id]),
            {"body": "Notes", "risk_level": "", "risk_notes": ""},
        )
    assert escalated.status_code == 404 and noted.status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="runs when DATABASE_URL is set")
@pytest.mark.parametrize("pause", ["before-the-lock", "after-the-lock"])
def test_an_escalation_raised_while_the_erasure_runs_never_fails_it(
    live, participant, therapist, supervisor, pause
):
    """(PostgreSQL) An escalation raised while the participant's erasure runs: one that
    comes after the erasure has locked the session waits for it and is refused, and one
    committed before the lock is erased with its record left. Unlocked, one raised once the
    erasure had read the open escalations went with the session without a record."""
    listed, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def held() -> None:
        listed.set()
        release.wait(5)

    original = Collector.delete

    def delete_after_a_pause(collector: Collector) -> object:
        held()
        return original(collector)

    def erase() -> None:
        try:
            participant_delete(participant=participant.participant)
            outcome["erase"] = "done"
        except Exception as fault:
            outcome["erase"] = fault
        finally:
            connection.close()

    def escalate() -> None:
        try:
            services.escalation_raise(session=live, raised_by=therapist.user, reason=RISK)
            outcome["escalate"] = "stored"
        except Exception as fault:
            outcome["escalate"] = fault
        finally:
            connection.close()

    if pause == "before-the-lock":
        pausing = mock.patch.object(Collector, "delete", delete_after_a_pause)
    else:  # connected after chat's own receiver, which takes the lock
        pre_delete.connect(
            lambda **kwargs: held(), sender=ChatSession, weak=False, dispatch_uid="t"
        )
        pausing = contextlib.nullcontext()
    try:
        with pausing:
            a = threading.Thread(target=erase)
            a.start()
            assert listed.wait(5)
            b = threading.Thread(target=escalate)
            b.start()
            b.join(0.5)
            release.set()
            a.join(10)
            b.join(10)
    finally:
        pre_delete.disconnect(sender=ChatSession, dispatch_uid="t")
    assert outcome["erase"] == "done", outcome
    assert not ChatSession.objects.filter(pk=live.pk).exists()
    assert not Escalation.objects.exists()
    if pause == "before-the-lock":
        assert outcome["escalate"] == "stored"
        assert ErasedEscalation.objects.filter(raised_by=therapist.user).count() == 1
    else:
        assert isinstance(outcome["escalate"], SessionErasedError), outcome
        assert not ErasedEscalation.objects.exists()
