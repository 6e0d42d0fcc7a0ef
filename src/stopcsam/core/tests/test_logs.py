from __future__ import annotations

import io
import logging
import sys
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import path

from stopcsam.core.logs import RedactSecretPaths, redact_secret_paths


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("GET /en/staff/invite/abcDEF123/ 200", "GET /en/staff/invite/<token>/ 200"),
        ("GET /de/chat/s/Xy_12-ab/ 200", "GET /de/chat/s/<id>/ 200"),
        ("POST /en/chat/s/Xy_12-ab/feedback/ 302", "POST /en/chat/s/<id>/feedback/ 302"),
        (
            "GET /en/chat/console/Xy12ab/transcript/Zz98/ 200",
            "GET /en/chat/console/<id>/transcript/<id>/ 200",
        ),
        ("GET /en/chat/console/escalations/ 200", "GET /en/chat/console/escalations/ 200"),
        ("GET /es/sessions/s/a1b2c3.ics 200", "GET /es/sessions/s/<id>.ics 200"),
        ("GET /es/sessions/s/a1b2c3/reschedule/ 200", "GET /es/sessions/s/<id>/reschedule/ 200"),
        ("GET /es/sessions/course/a1b2c3.ics 200", "GET /es/sessions/course/<id>.ics 200"),
        ("GET /en/sessions/staff/a/a1b2c3/ 200", "GET /en/sessions/staff/a/<id>/ 200"),
        ("GET /en/chat/ 200", "GET /en/chat/ 200"),
        (
            "GET /admin/accounts/participant/123/change/ 200",
            "GET /admin/accounts/participant/<id>/change/ 200",
        ),
        (
            "POST /admin/study/enrolment/7/delete/ 302",
            "POST /admin/study/enrolment/<id>/delete/ 302",
        ),
        ("GET /admin/scheduling/appointment/9 301", "GET /admin/scheduling/appointment/<id> 301"),
        ("GET /admin/auth/user/4/password/ 200", "GET /admin/auth/user/<id>/password/ 200"),
        ("GET /admin/r/12/345/ 302", "GET /admin/r/12/<id>/ 302"),
        ("GET /admin/accounts/participant/add/ 200", "GET /admin/accounts/participant/add/ 200"),
        ("GET /admin/accounts/participant/ 200", "GET /admin/accounts/participant/ 200"),
        ("GET /admin/study/ 200", "GET /admin/study/ 200"),
        ("/admin/study/enrolment/7/change/", "/admin/study/enrolment/<id>/change/"),
        (
            "Not Found: /admin/chat/chatsession/5/change/",
            "Not Found: /admin/chat/chatsession/<id>/change/",
        ),
        (
            "GET /static/admin/js/vendor/jquery/jquery.js 200",
            "GET /static/admin/js/vendor/jquery/jquery.js 200",
        ),
    ],
)
def test_log_lines_name_no_participant_session_nor_credential(path: str, logged: str) -> None:
    """Pseudonymous ids with the time of each line would link one person's visits (a review
    finding); an invitation's token is a working credential."""
    assert redact_secret_paths(path) == logged


@pytest.mark.django_db
def test_a_path_cannot_write_a_line_of_its_own_into_the_access_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A line break in the path (%0A) wrote a forged line into the access log, such as a
    visit to someone's chat session that never happened. Django's own request log escapes
    the path; ours did not."""
    from django.test import Client

    forged = "/en/x%0A2026-01-01 00:00:00,000 INFO stopcsam.access GET /en/chat/ 200 1.0ms"
    with caplog.at_level("INFO", logger="stopcsam.access"):
        Client().get(forged)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "stopcsam.access"]
    assert "\n" not in line and "\r" not in line
    assert line.startswith("GET /en/x\\n2026")


def _console_handler() -> logging.Handler:
    """The handler settings.LOGGING gives the root logger: every line the service writes."""
    (handler,) = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactSecretPaths) for f in h.filters)
    ]
    return handler


def _written(handler: logging.Handler, record: logging.LogRecord) -> str:
    stream = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(stream)
    try:
        handler.handle(record)
    finally:
        handler.setStream(previous)
    return stream.getvalue()


def _fail_with(marker: str) -> None:
    try:
        raise KeyError(f"Key (username)=({marker}) already exists")
    except KeyError as first:
        raise ValueError(f"invalid input: {marker}") from first


def test_a_logged_exception_keeps_its_kind_and_frames_but_never_its_text() -> None:
    """A traceback ends with the exception's text, which may quote a value: a unique key's
    detail, input, a decrypted message (a review finding). The lines keep the kind and where
    it happened, for every exception of a chain, and drop the text."""
    marker = "I am worried about my urges"
    try:
        _fail_with(marker)
    except ValueError:
        record = logging.getLogger("stopcsam.test").makeRecord(
            "stopcsam.test", logging.ERROR, __file__, 1, "it failed", None, sys.exc_info()
        )
    # Another handler may have formatted the record first, with the text.
    record.exc_text = f"cached: {marker}"
    written = _written(_console_handler(), record)
    assert marker not in written and "urges" not in written
    assert "it failed" in written and "Traceback (most recent call last):" in written
    assert "KeyError" in written and "ValueError" in written
    assert "direct cause" in written
    assert f'File "{__file__}"' in written and "in _fail_with" in written


@pytest.mark.django_db
def test_a_500_is_logged_without_the_exception_text(settings: Any) -> None:
    """Django's "Internal Server Error" line carries the traceback of the view's fault."""
    from django.test import Client

    marker = "I am worried about my urges"
    settings.ROOT_URLCONF = "stopcsam.core.tests.test_logs"
    handler = _console_handler()
    stream = io.StringIO()
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        client = Client(raise_request_exception=False)
        page = client.get("/boom/", {"q": marker})
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
    written = stream.getvalue()
    assert page.status_code == 500
    assert "Internal Server Error: /boom/" in written and "ValueError" in written
    assert "in _boom" in written
    assert marker not in written and "urges" not in written


def _boom(request: HttpRequest) -> HttpResponse:
    raise ValueError(f"cannot read {request.GET['q']}")


urlpatterns = [path("boom/", _boom)]


@pytest.mark.parametrize("name", ["django.request", "django.security.csrf", "uvicorn.error"])
def test_every_handler_of_a_line_redacts_it(name: str) -> None:
    """Django's defaults kept a console handler of their own (when DEBUG) and one mailing
    ADMINS on the "django" logger, beside ours: both wrote what ours redacts."""
    logger: logging.Logger | None = logging.getLogger(name)
    handlers = []
    while logger is not None:
        handlers += [h for h in logger.handlers if not type(h).__module__.startswith("_pytest")]
        logger = logger.parent if logger.propagate else None
    assert handlers and all(
        any(isinstance(f, RedactSecretPaths) for f in h.filters) for h in handlers
    )
