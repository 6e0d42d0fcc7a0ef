"""`stopcsam demo` on a fresh directory: it migrates, seeds, prints logins and serves, and a
printed staff login works with the one-time code from `stopcsam totp`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.e2e.http_client import Browserish
from tests.server import STOPCSAM, _wait_until_up, free_port


def test_demo_serves_and_its_printed_logins_work(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STOPCSAM_", "DATABASE_URL", "REDIS_URL", "DJANGO_", "SECRET"))
    }
    env |= {"STOPCSAM_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"}
    port = free_port()
    log = (tmp_path / "demo.log").open("w")
    process = subprocess.Popen(
        [STOPCSAM, "demo", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_until_up(f"http://127.0.0.1:{port}", process)
        printed = (tmp_path / "demo.log").read_text()
        for username in ("therapist-de", "therapist-cz", "supervisor-de", "coordinator"):
            assert username in printed
        password = re.search(r"password for every account: (\S+)\)", printed).group(1)  # type: ignore[union-attr]
        code = subprocess.run(
            [STOPCSAM, "totp", "therapist-de"],
            env={**env, "STOPCSAM_DEMO": "1"},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        assert re.fullmatch(r"\d{6}", code)

        client = Browserish(f"http://127.0.0.1:{port}", "127.0.0.1", {})
        token = client.csrf_token("/en/staff/login/")
        status, _, location = client.request(
            "POST",
            "/en/staff/login/",
            {
                "csrfmiddlewaretoken": token,
                "username": "therapist-de",
                "password": password,
                "otp_token": code,
            },
        )
        assert (status, location) == (302, "/en/staff/")
        status, html, _ = client.request("GET", "/en/staff/")
        assert status == 200 and "Anna (DE)" in html
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
