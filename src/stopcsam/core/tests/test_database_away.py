from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import BadRequest, PermissionDenied
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import get_resolver

from stopcsam.accounts.middleware import ParticipantMiddleware
from stopcsam.conftest import ParticipantPersona
from stopcsam.core.views import csrf_failure

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


def _participant_away() -> Any:
    """The database goes away after the session was read: the page's sign-in, read by the
    base template, is the first query that fails."""
    away = OperationalError("connection refused: I am worried about my urges")
    return mock.patch("stopcsam.accounts.middleware.session_participant", side_effect=away)


def test_a_database_away_while_the_404_page_renders_is_the_503_page(
    participant: ParticipantPersona,
    participant_client: Callable[[ParticipantPersona], Client],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The error pages read the sign-in (core/base.html): with the database gone there, the
    visitor got the 500 page instead of the 503 page that loads itself again."""
    client = participant_client(participant)
    client.raise_request_exception = False
    with _participant_away():
        page = client.get("/es/no-such-page/")
    assert page.status_code == 503 and page["Retry-After"] == "10"
    assert 'lang="es"' in page.content.decode()
    assert "worried" not in caplog.text


@pytest.mark.parametrize(
    ("status", "exception"),
    [(400, BadRequest()), (403, PermissionDenied()), (404, Http404())],
)
def test_every_error_page_answers_503_with_the_database_away(
    participant: ParticipantPersona, status: int, exception: Exception
) -> None:
    handler = get_resolver().resolve_error_handler(status)
    with _participant_away():
        page = handler(_request("get"), exception=exception)
    assert page.status_code == 503


def test_a_database_away_while_the_csrf_page_renders_is_the_503_page() -> None:
    with _participant_away():
        page = csrf_failure(_request("post"))
    assert page.status_code == 503


def _request(method: str) -> HttpRequest:
    """A request as the middleware leaves it for an error page: its session already read."""
    request = getattr(RequestFactory(), method)("/en/me/")
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
    request.user = AnonymousUser()
    ParticipantMiddleware(lambda request: HttpResponse())(request)
    return request
