from __future__ import annotations

from datetime import timedelta

from django.urls import reverse

from stopcsam.chat import services
from stopcsam.core.models import AuditEvent


def test_an_earlier_sessions_risk_assessment_is_not_shown_without_an_audited_read(
    book, participant, therapist, therapist_es, staff_client
):
    earlier = book(
        participant.participant, therapist_es.user, starts_in=timedelta(days=-7), number=1
    )
    services.note_save(
        session=earlier,
        author=therapist_es.user,
        body="Discussed a coping plan",
        risk_level="high",
        risk_notes="",
    )
    current = book(participant.participant, therapist.user, number=2)  # after a hand-over
    page = staff_client(therapist).get(reverse("chat:console", args=[current.public_id]))
    import re

    shown = bool(re.search(r"Session 1 of 4</a>[^<]*— High: act now</li>", page.content.decode()))

    audited = AuditEvent.objects.filter(
        subject=earlier.audit_ref, action="chat.transcript_read"
    ).exists()
    assert not shown or audited, "another therapist's risk assessment shown, no read of it audited"
