"""The scaled-out deployment of docs/operators.md, brought up by deploy/two-processes.sh:
two ASGI processes behind nginx on PostgreSQL and Redis. Runs when DATABASE_URL and REDIS_URL
point at the real servers (CI's second run)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.http_client import Browserish
from tests.e2e.test_chat_fault import MESSAGES, SETUP, Client, drive
from tests.server import SERVER_ENV, STOPCSAM, free_port, postgres_database

SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "two-processes.sh"
NGINX_AVAILABLE = bool(shutil.which("nginx")) or Path("/usr/sbin/nginx").exists()
pytestmark = pytest.mark.skipif(
    not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL") and NGINX_AVAILABLE),
    reason="needs DATABASE_URL, REDIS_URL and nginx",
)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """Yields nginx's URL, the state directory, and the environment (with the ports)."""
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        pytest.skip("needs DATABASE_URL and REDIS_URL")
    with postgres_database(os.environ["DATABASE_URL"]) as database_url:
        ports = {
            "PORT_A": str(free_port()),
            "PORT_B": str(free_port()),
            "PORT_NGINX": str(free_port()),
        }
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("STOPCSAM_", "DJANGO_"))}
        env = {
            **clean,
            **SERVER_ENV,
            **ports,
            "DATABASE_URL": database_url,
            "STOPCSAM": STOPCSAM,
            "PATH": os.environ["PATH"] + ":/usr/sbin",
        }
        state = tmp_path / "state"
        try:
            subprocess.run(
                [str(SCRIPT), "up", str(state)],
                env=env,
                check=True,
                timeout=120,
                capture_output=True,
                text=True,
            )
            yield f"http://127.0.0.1:{ports['PORT_NGINX']}", state, env
        finally:
            subprocess.run(
                [str(SCRIPT), "down", str(state)],
                env=env,
                check=False,
                timeout=60,
                capture_output=True,
            )


def test_a_participant_is_served_by_both_processes_through_nginx(
    deployment: tuple[str, Path, dict[str, str]],
) -> None:
    url, state, ports = deployment
    client = Browserish(url, "127.0.0.1", {"User-Agent": "TwoProcessCanary/1.0"})
    token = client.csrf_token("/en/start/")
    status, html, _ = client.request(
        "POST", "/en/start/", {"csrfmiddlewaretoken": token, "language": "en"}
    )
    assert status == 200
    codename = re.search(r'id="codename">([^<]+)<', html).group(1)  # type: ignore[union-attr]
    for _ in range(6):  # nginx round-robins; the server-side session works on either process
        status, _, _ = client.request("GET", "/en/me/")
        assert status == 200
    logs = {
        port: (state / f"serve-{port}.log").read_text()
        for port in (ports["PORT_A"], ports["PORT_B"])
    }
    assert all("GET /en/me/ 200" in log for log in logs.values()), "both processes served"
    for log in logs.values():
        assert "TwoProcessCanary" not in log and codename not in log
    worker = int((state / "worker.pid").read_text())
    os.kill(worker, 0)  # the deployment's one background worker is running (no error)
    assert "Huey consumer started" in (state / "worker.log").read_text()
    for log in logs.values():  # and neither serve command runs the jobs again
        assert "scheduling jobs run in this process" not in log
    # An upload nginx refuses (413) is an error line naming the client: none is written.
    status, _, _ = client.request("POST", "/en/me/", {"text": "x" * 100_000})
    assert status == 413
    nginx_logs = "".join(path.read_text() for path in (state / "nginx").glob("*.log"))
    assert "client:" not in nginx_logs and "127.0.0.1" not in nginx_logs


def test_a_chat_runs_across_the_two_processes(
    deployment: tuple[str, Path, dict[str, str]],
) -> None:
    """The participant on one process, the therapist on the other: Redis carries the fan-out."""
    _url, _state, env = deployment
    setup = SETUP.replace("PAIRS", "1")
    out = subprocess.run(
        [STOPCSAM, "shell", "-c", setup], env=env, capture_output=True, text=True, check=True
    ).stdout
    item = json.loads(out.split("JSON", 1)[1])[0]
    path = f"/ws/chat/{item['public_id']}"
    a, b = env["PORT_A"], env["PORT_B"]
    participant = Client(
        f"ws://127.0.0.1:{a}{path}", f"http://127.0.0.1:{a}", item["p"], "participant"
    )
    therapist = Client(f"ws://127.0.0.1:{b}{path}", f"http://127.0.0.1:{b}", item["t"], "therapist")

    pair = [participant, therapist]
    drive(pair, lambda: all(len(c.seen) == 2 * MESSAGES for c in pair), seconds=30)
    for client in (participant, therapist):
        assert len(client.acked) == MESSAGES
        assert client.seen == list(range(1, 2 * MESSAGES + 1))  # both sides, in order, once
    heard = {body for sender, body in participant.bodies.values() if sender == "therapist"}
    assert heard == {f"therapist message {n}" for n in range(MESSAGES)}
