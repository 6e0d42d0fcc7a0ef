from __future__ import annotations

from collections.abc import Callable
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client

from stopcsam.conftest import ParticipantPersona

pytestmark = pytest.mark.django_db


def test_a_database_away_before_the_view_is_the_503_page_not_a_500(
    participant: ParticipantPersona,
    participant_client: Callable[[ParticipantPersona], Client],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first query of a signed-in request is the session's, read by the CSRF middleware
    (CSRF_USE_SESSIONS) before any view: with the database away there (PostgreSQL
    restarting), BusyMiddleware never saw the error and the waiting room's refresh got a
    plain 500, which stops it for good. The text of the error is not logged."""
    client = participant_client(participant)
    client.raise_request_exception = False
    away = OperationalError("connection refused: I am worried about my urges")
    with mock.patch(
        "django.contrib.sessions.backends.db.SessionStore._get_session_from_db", side_effect=away
    ):
        page = client.get("/de/me/")
    assert page.status_code == 503 and page["Retry-After"] == "10"
    html = page.content.decode()
    assert '<meta http-equiv="refresh" content="10">' in html and 'lang="de"' in html
    assert "no-store" in page["Cache-Control"]
    assert "worried" not in caplog.text


def test_a_database_away_when_the_session_is_saved_after_the_view_is_the_503_page(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The session is saved on the way out (SessionMiddleware.process_response), after the
    view and BusyMiddleware: with the database gone by then it was a bare 500, not the 503
    page. The login page stores its form's CSRF token in a new session, so it saves one."""
    client = Client()
    client.raise_request_exception = False
    away = OperationalError("connection refused: I looked at illegal images again last week")
    with mock.patch("stopcsam.accounts.session_store.SessionStore.save", side_effect=away):
        page = client.get("/pt/login/")
    assert page.status_code == 503 and page["Retry-After"] == "10"
    html = page.content.decode()
    assert '<meta http-equiv="refresh" content="10">' in html and 'lang="pt"' in html
    assert "no-store" in page["Cache-Control"] and "sid" not in page.cookies
    assert "illegal" not in caplog.text
