"""The deterrence API on a real server process: schemathesis against the served OpenAPI schema
(no 500s, every response conforms), and the canary (no query text in logs or the database)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_canary import _database_text
from tests.server import RunningServer, running_server

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    with running_server(tmp_path_factory.mktemp("api")) as server:
        key = server.manage(
            "apikey", "create", "--partner", "Fuzz", "--campaign", "fuzz", "--rate", "100000"
        ).strip()
        yield server, key


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    api_server: tuple[RunningServer, str], tmp_path: Path
) -> None:
    server, key = api_server
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{server.url}/api/v1/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {key}",
            "--max-examples",
            "25",
            "--seed",
            "20261122",
            "--workers",
            "2",
            "--request-timeout",
            "10",
            "--max-time",
            "40",
            "--generation-database",
            ":memory:",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "POST /api/v1/deterrence/check 200" in server.log_text()
    assert not re.search(r" 5\d\d \d+\.\dms", server.log_text())


CANARY = "canary-live-4b8e placeholder-term-alpha zz-live-canary"


def test_no_query_text_reaches_the_log_or_the_database(
    api_server: tuple[RunningServer, str],
) -> None:
    server, key = api_server
    for body in (
        {"query": CANARY, "lang": "de"},
        {"query": CANARY, "lang": "xx"},
        {"query": CANARY * 100},
    ):
        request = urllib.request.Request(  # noqa: S310  (our own server on 127.0.0.1)
            f"{server.url}/api/v1/deterrence/check",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                assert json.loads(response.read())["match"] is True
        except urllib.error.HTTPError as exc:
            assert exc.code == 400
    time.sleep(1.5)  # the endpoint writes its counts about once a second
    logs, database = server.log_text(), _database_text(server)
    assert "POST /api/v1/deterrence/check 200" in logs  # we did look
    assert "warning_shown" in database
    for needle in ("canary-live-4b8e", "zz-live-canary", key):
        assert needle not in logs
        assert needle not in database
