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
