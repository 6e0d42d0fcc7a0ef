"""The example deployment files are valid: the Tor configuration parses and forwards to the
address nginx listens on; nginx writes no access log and forwards nothing identifying."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def _torrc() -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for line in (DEPLOY / "torrc").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, _, value = line.partition(" ")
        options.setdefault(key, []).append(value.strip())
    return options


def test_the_tor_configuration_parses_and_points_at_nginx() -> None:
    options = _torrc()
    known = {
        "SocksPort",
        "HiddenServiceDir",
        "HiddenServiceVersion",
        "HiddenServicePort",
        "HiddenServiceMaxStreams",
        "HiddenServiceMaxStreamsCloseCircuit",
        "HiddenServiceEnableIntroDoSDefense",
        "HiddenServiceEnableIntroDoSRatePerSec",
        "HiddenServiceEnableIntroDoSBurstPerSec",
        "Log",
    }
    assert set(options) <= known, set(options) - known
    assert options["HiddenServiceVersion"] == ["3"]
    virtual, target = options["HiddenServicePort"][0].split()
    assert virtual == "80"
    listen = re.search(r"listen (\S+);", (DEPLOY / "nginx.conf").read_text()).group(1)  # type: ignore[union-attr]
    assert target == listen == "127.0.0.1:8080"
    assert options["SocksPort"] == ["0"]


@pytest.mark.skipif(not shutil.which("tor"), reason="tor is not installed")
def test_tor_itself_accepts_the_configuration(tmp_path: Path) -> None:
    text = (DEPLOY / "torrc").read_text().replace("/var/lib/tor/stopcsam/", f"{tmp_path}/hs/")
    text = text.replace("/var/log/tor/notices.log", f"{tmp_path}/notices.log")
    config = tmp_path / "torrc"
    config.write_text(text + f"\nDataDirectory {tmp_path}/data\n")
    result = subprocess.run(
        ["tor", "--verify-config", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_nginx_logs_and_forwards_no_identity() -> None:
    text = (DEPLOY / "nginx.conf").read_text()
    assert "access_log off;" in text
    (level,) = re.findall(r"^error_log \S+ (\w+);", text, flags=re.M)
    assert level == "emerg"  # error lines name the client's address


def test_nginx_marks_onion_requests_secure_and_no_other_plain_request() -> None:
    """A clearnet HTTPS name beside the onion: the onion's plain-HTTP requests must not be
    redirected to https:// (core/tests/test_headers.py shows the application's side)."""
    text = (DEPLOY / "nginx.conf").read_text()
    assert "map $host $forwarded_proto { ~\\.onion$ https; default $scheme; }" in text
    assert "X-Forwarded-Proto $scheme" not in text
    assert text.count("proxy_set_header X-Forwarded-Proto $forwarded_proto;") == 2
    assert 'proxy_set_header X-Forwarded-For "";' in text
    assert "$remote_addr" not in text and "$http_user_agent" not in text


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx is not installed")
def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    result = subprocess.run(
        ["nginx", "-t", "-c", str(DEPLOY / "nginx.conf"), "-p", str(tmp_path), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
