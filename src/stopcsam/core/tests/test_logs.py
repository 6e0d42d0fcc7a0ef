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
    ],
)
def test_log_lines_name_no_participant_session_nor_credential(path: str, logged: str) -> None:
    """Pseudonymous ids with the time of each line would link one person's visits (a review
    finding); an invitation's token is a working credential."""
    assert redact_secret_paths(path) == logged
