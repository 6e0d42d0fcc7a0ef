from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import translation

from stopcsam.accounts.models import Participant, StaffUser
from stopcsam.chat import hub, services, writer
from stopcsam.chat.models import ChatSession
from stopcsam.chat.tests import fakes
from stopcsam.core import clock

HOOKS = "stopcsam.chat.tests.fakes."


@pytest.fixture(autouse=True)
def fake_scheduling() -> Iterator[None]:
    fakes.reset()
    hub.reset_hub()
    translation.activate("en")  # reverse() and pages in English, whatever ran before
    with override_settings(
        STOPCSAM_APPOINTMENT_SOURCE=HOOKS + "appointment_source",
        STOPCSAM_APPOINTMENTS_FOR=HOOKS + "appointments_for",
        STOPCSAM_APPOINTMENT_JOINED=HOOKS + "joined",
        STOPCSAM_APPOINTMENT_ATTENDED=HOOKS + "attended",
        STOPCSAM_APPOINTMENT_NOT_HELD=HOOKS + "not_held",
        STOPCSAM_PARTICIPANT_STUDY_ID=None,
        REDIS_URL="",
    ):
        yield
    writer.shutdown()
    hub.reset_hub()


Book = Callable[..., ChatSession]


@pytest.fixture
def book() -> Book:
    """Book an appointment through the fake scheduling and mirror it as a chat session."""

    def make(
        participant: Participant,
        therapist: StaffUser,
        *,
        starts_in: timedelta = timedelta(0),
        number: int = 1,
        of: int = 4,
    ) -> ChatSession:
        starts_at = clock.now() + starts_in
        appointment = {
            "appointment_ref": f"apt-{uuid.uuid4().hex[:12]}",
            "participant_id": participant.pk,
            "therapist_id": therapist.pk,
            "starts_at": starts_at,
            "ends_at": starts_at + timedelta(minutes=50),
            "number": number,
            "of": of,
            "language": participant.language,
        }
        fakes.APPOINTMENTS[appointment["appointment_ref"]] = appointment
        return services.session_sync(appointment=appointment)

    return make


@pytest.fixture
def live(book: Book, participant, therapist) -> ChatSession:  # type: ignore[no-untyped-def]
    """A session in progress: the participant waited and the therapist admitted them."""
    session = book(participant.participant, therapist.user)
    services.session_enter(session=session, role="participant")
    return services.session_admit(session=session, therapist=therapist.user)


@pytest.fixture
def cookies(participant_client, staff_client):  # type: ignore[no-untyped-def]
    """(participant_cookie, staff_cookie): a persona's signed-in ``sid`` cookie header."""

    def participant_cookie(persona) -> str:  # type: ignore[no-untyped-def]
        return f"sid={participant_client(persona).cookies['sid'].value}"

    def staff_cookie(persona, verified: bool = True) -> str:  # type: ignore[no-untyped-def]
        return f"sid={staff_client(persona, verified=verified).cookies['sid'].value}"

    return participant_cookie, staff_cookie
