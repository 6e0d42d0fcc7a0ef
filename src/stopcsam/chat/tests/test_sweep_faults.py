"""with scheduling's notices inside session_end's transaction, one session whose
notice keeps failing rolls back on every minute sweep, and the sweep stops there: every
session after it stays live for good (before, it was ended and the next sweep went on)."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from unittest import mock

import pytest

from stopcsam.chat import services, timing
from stopcsam.chat.models import SessionState
from stopcsam.chat.tests import fakes

pytestmark = pytest.mark.django_db


def test_one_failing_notice_does_not_keep_other_sessions_live(
    book, participant, other_participant, therapist
):  # type: ignore[no-untyped-def]
    first = book(participant.participant, therapist.user)
    second = book(other_participant.participant, therapist.user)
    for session in (first, second):
        services.session_enter(session=session, role="participant")
        services.session_admit(session=session, therapist=therapist.user)
    real = fakes.attended

    def attended(*, appointment_ref: str) -> None:
        if appointment_ref == first.appointment_ref:
            raise RuntimeError("scheduling refuses this one")
        real(appointment_ref=appointment_ref)

    later = max(timing.forced_end_at(first), timing.forced_end_at(second)) + timedelta(minutes=1)
    with mock.patch.object(fakes, "attended", attended):
        for minute in range(3):  # three runs of the minute sweep
            with (
                mock.patch(
                    "stopcsam.core.clock.now", return_value=later + timedelta(minutes=minute)
                ),
                contextlib.suppress(RuntimeError),
            ):
                services.sessions_expire_due()
    second.refresh_from_db()
    assert second.state == SessionState.ENDED, "left live by another session's failing notice"
    assert [second.appointment_ref] == fakes.ATTENDED
