"""An open escalation whose participant chose "stop and erase" used to vanish from the
supervisor's list unexplained (noticed in session 18): the supervisor could not tell it had
gone, nor follow it up with the therapist. Now it leaves who raised it and when, and nothing
of the participant."""

from __future__ import annotations

from django.urls import reverse

from stopcsam.accounts.models import Role
from stopcsam.accounts.services import participant_delete
from stopcsam.chat import selectors, services
from stopcsam.chat.models import ErasedEscalation, Escalation
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
    assert RISK not in page and study_id not in page
    # A supervisor of another site (which has its own) is not reached, and cannot dismiss it.
    pilar = staff_client(_staff("pilar", Role.SUPERVISOR, site_es, ["es"]))
    assert (
        "erased with their participant"
        not in pilar.get(reverse("chat:escalations")).content.decode()
    )
    assert pilar.post(reverse("chat:escalations"), {"erased": erased.pk}).status_code == 404
    assert sabine.post(reverse("chat:escalations"), {"erased": "x"}).status_code == 404

    done = sabine.post(reverse("chat:escalations"), {"erased": erased.pk}, follow=True)

    assert "The escalation is marked as handled." in done.content.decode()
    assert not ErasedEscalation.objects.exists()
    assert AuditEvent.objects.filter(action="chat.erased_escalation_handled").count() == 1
    assert "erased with their participant" not in done.content.decode()


def test_a_therapist_sees_no_erased_escalations(live, participant, therapist, staff_client):
    services.escalation_raise(session=live, raised_by=therapist.user, reason=RISK)
    participant_delete(participant=participant.participant)
    assert ErasedEscalation.objects.count() == 1
    page = staff_client(therapist).get(reverse("chat:escalations"))
    assert "erased with their participant" not in page.content.decode()
    assert (
        staff_client(therapist)
        .post(reverse("chat:escalations"), {"erased": ErasedEscalation.objects.get().pk})
        .status_code
        == 404
    )


def test_the_spanish_page_speaks_to_the_supervisor_as_every_other_one_does(
    live, participant, therapist, supervisor, staff_client
):
    services.escalation_raise(session=live, raised_by=therapist.user, reason=RISK)
    participant_delete(participant=participant.participant)
    page = staff_client(supervisor).get("/es/chat/console/escalations/").content.decode()
    assert "Habla con el terapeuta" in page  # "tú", not "usted" (a review finding)
