from __future__ import annotations

import pytest
from django.test import Client

from stopcsam.accounts.sessions import SESSION_KEY


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"origin": "null"},
        {"origin": "http://evil.example"},
        {"origin": "null", "sec-fetch-site": "same-origin"},
    ],
)
def test_posts_without_csrf_get_the_localised_403(live, participant, headers):
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    s = client.session
    s[SESSION_KEY] = participant.participant.pk
    s.save()
    for url in (
        f"/de/chat/s/{live.public_id}/",
        "/de/logout/",
        "/de/me/delete/",
        "/de/study/withdraw/",
        "/de/login/",
        "/de/start/",
    ):
        r = client.post(
            url, {"body": "I am worried about my urges", "client_id": "f-abcdefgh"}, headers=headers
        )
        assert r.status_code == 403, (url, r.status_code)
        assert "Formular" in r.content.decode() or "Sicherheit" in r.content.decode(), (
            r.content.decode()[:300]
        )
