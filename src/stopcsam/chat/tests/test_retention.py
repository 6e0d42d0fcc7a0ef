from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from stopcsam.chat import services
from stopcsam.chat.models import ChatMessage, ChatSession

pytestmark = pytest.mark.django_db(transaction=True)


def test_old_transcripts_are_shredded_and_recent_ones_kept(
    settings, book, participant, other_participant, therapist
):
    settings.CHAT_RETENTION_DAYS = 30
    old = book(participant.participant, therapist.user, starts_in=timedelta(days=-40))
    ChatSession.objects.filter(pk=old.pk).update(state="live", admitted_at=old.starts_at)
    services.message_send(
        session_id=old.pk, sender="participant", client_id="c-old-0001", body="How was your week?"
    )
    recent = book(other_participant.participant, therapist.user, starts_in=timedelta(days=-1))
    ChatSession.objects.filter(pk=recent.pk).update(state="live", admitted_at=recent.starts_at)
    services.message_send(
        session_id=recent.pk, sender="participant", client_id="c-new-0001", body="Thank you"
    )
    out = StringIO()
    call_command("chat_retention", stdout=out)
    assert "shredded 1" in out.getvalue()
    assert list(ChatMessage.objects.values_list("session_id", flat=True)) == [recent.pk]
    old.refresh_from_db()
    assert old.shredded_at is not None
