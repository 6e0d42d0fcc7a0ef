"""The participant's server-side session: it holds the participant id, never the codename."""

from __future__ import annotations

from django.http import HttpRequest
from django.middleware.csrf import rotate_token

from stopcsam.accounts.models import Participant

SESSION_KEY = "participant_id"


def participant_login(request: HttpRequest, participant: Participant) -> None:
    request.session.cycle_key()  # a fresh session id at every login (no fixation)
    rotate_token(request)  # and a fresh CSRF token, as Django's login() gives staff
    request.session[SESSION_KEY] = participant.pk
    request.participant = participant  # type: ignore[attr-defined]


def participant_logout(request: HttpRequest) -> None:
    request.session.flush()
    request.participant = None  # type: ignore[attr-defined]


def session_participant(request: HttpRequest) -> Participant | None:
    participant_id = request.session.get(SESSION_KEY)
    if participant_id is None:
        return None
    participant = Participant.objects.filter(pk=participant_id).first()
    if participant is None:  # deleted elsewhere: the session is dead too
        request.session.flush()
    return participant
