from __future__ import annotations

import pytest

from stopcsam.core.logs import redact_secret_paths


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
