"""The example deployment files are valid: the Tor configuration parses and forwards to the
address nginx listens on; nginx writes no access log and forwards nothing identifying."""

from __future__ import annotations

import http.client
import http.server
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.server import free_port

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


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx is not installed")
def test_nginx_sends_each_persons_chat_sockets_to_one_process(tmp_path: Path) -> None:
    """The chat's flood allowance is kept per person in each process: all of one person's
    sockets (one session cookie) must reach the same process, or two tabs get twice the rate.
    Two stand-in processes answer with their own name; nginx runs the shipped configuration."""
    backends = [_NamedServer(f"process-{n}") for n in (1, 2)]
    listen = free_port()
    text = (DEPLOY / "nginx.conf").read_text()
    text = text.replace("127.0.0.1:8001", f"127.0.0.1:{backends[0].port}")
    text = text.replace("127.0.0.1:8002", f"127.0.0.1:{backends[1].port}")
    text = text.replace("listen 127.0.0.1:8080", f"listen 127.0.0.1:{listen}")
    text = text.replace("pid /tmp/stopcsam-nginx.pid", f"pid {tmp_path}/nginx.pid")
    config = tmp_path / "nginx.conf"
    config.write_text(text)
    nginx = ["nginx", "-c", str(config), "-p", str(tmp_path), "-e", "stderr"]
    subprocess.run([*nginx, "-g", "daemon on;"], check=True, timeout=30)
    try:

        def served_by(cookie: str) -> str:
            for _ in range(50):  # nginx may take a moment to listen
                connection = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)
                try:
                    connection.request("GET", "/ws/chat/abc", headers={"Cookie": f"sid={cookie}"})
                    return connection.getresponse().read().decode()
                except OSError:
                    time.sleep(0.1)
                finally:
                    connection.close()
            raise AssertionError("nginx did not answer")

        people = [f"person{n:02d}" for n in range(24)]
        first = {person: served_by(person) for person in people}
        for person in people:  # every later socket of the same person: the same process
            assert {served_by(person) for _ in range(4)} == {first[person]}
        assert set(first.values()) == {"process-1", "process-2"}  # and both processes serve
    finally:
        subprocess.run([*nginx, "-s", "quit"], check=False, timeout=30)
        for backend in backends:
            backend.close()


class _NamedServer:
    """An HTTP server in a thread that answers every GET with its name."""

    def __init__(self, name: str) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
