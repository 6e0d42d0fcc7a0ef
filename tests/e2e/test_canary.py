"""The canary: run a whole account scenario against the real server with a known codename,
address and user agent, then search every log line and every database value for them.

The codename may appear in neither (only its hash is stored). The address, user agent and
referrer may appear nowhere at all.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.http_client import Browserish
from tests.server import SERVER_ENV, RunningServer, running_server

CANARY_IP = "127.0.0.23"  # a loopback source address no other part of the test uses
CANARY_UA = "CanaryAgent/9.9 (canary-ua-7f3e1)"
CANARY_FORWARDED = "198.51.100.77"
CANARY_REFERER = "https://canary-referrer.example/page"


def _database_text(server: RunningServer) -> str:
    if server.database_url:
        import psycopg

        with psycopg.connect(server.database_url) as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            ]
            dumped = []
            for table in tables:
                rows = conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()  # noqa: S608
                dumped += [row[0] for row in rows]
        return "\n".join(dumped)
    with sqlite3.connect(server.var_dir / "stopcsam.sqlite3") as conn:
        return "\n".join(conn.iterdump())


def _session_payloads(database_text: str) -> str:
    """Decode every stored session, so nothing hides inside base64."""
    from django.core import signing
    from django.core.signing import JSONSerializer

    decoded = []
    for token in re.findall(r"[A-Za-z0-9_\-:.]{40,}", database_text):
        try:
            decoded.append(
                repr(
                    signing.loads(
                        token,
                        key=SERVER_ENV["SECRET_KEY"],
                        salt="django.contrib.sessions.SessionStore",
                        serializer=JSONSerializer,
                    )
                )
            )
        except signing.BadSignature:
            continue
    return "\n".join(decoded)


@pytest.fixture
def canary_server(tmp_path: Path) -> RunningServer:
    with running_server(tmp_path) as server:
        yield server  # type: ignore[misc]


def test_no_identity_reaches_a_log_or_the_database(canary_server: RunningServer) -> None:
    client = Browserish(
        canary_server.url,
        CANARY_IP,
        {
            "User-Agent": CANARY_UA,
            "X-Forwarded-For": CANARY_FORWARDED,
            "X-Real-IP": CANARY_FORWARDED,
            "Referer": CANARY_REFERER,
            "Accept-Language": "de",
        },
    )
    token = client.csrf_token("/de/start/")
    status, html, _ = client.request(
        "POST", "/de/start/", {"csrfmiddlewaretoken": token, "language": "de"}
    )
    assert status == 200
    codename = re.search(r'<p class="codename" id="codename">([^<]+)</p>', html).group(1)  # type: ignore[union-attr]
    token = client.csrf_token("/de/me/")
    client.request("POST", "/de/logout/", {"csrfmiddlewaretoken": token})
    token = client.csrf_token("/de/login/")
    status, _, location = client.request(
        "POST", "/de/login/", {"csrfmiddlewaretoken": token, "codename": codename.upper()}
    )
    assert (status, location) == (302, "/de/study/")
    client.request("POST", "/de/login/", {"csrfmiddlewaretoken": token, "codename": "wrong"})
    client.request("GET", "/de/does-not-exist/")

    logs = canary_server.log_text()
    database = _database_text(canary_server)
    sessions = _session_payloads(database)
    assert "GET /de/start/ 200" in logs and "participant_id" in sessions  # we did look
    for haystack in (logs, database, sessions):
        assert codename not in haystack
        assert codename.upper() not in haystack
        for secret in (
            CANARY_IP,
            CANARY_UA,
            "canary-ua-7f3e1",
            CANARY_FORWARDED,
            "canary-referrer",
        ):
            assert secret not in haystack
