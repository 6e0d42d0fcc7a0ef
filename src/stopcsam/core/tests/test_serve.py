"""``stopcsam serve``: the process count it is given is checked, and its workers start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

STOPCSAM = str(Path(sys.executable).with_name("stopcsam"))
SERVER_ENV = {
    "DJANGO_SETTINGS_MODULE": "stopcsam.settings",
    "SECRET_KEY": "serve-test-secret-key-" + "s" * 40,
    "STOPCSAM_ENCRYPTION_KEYS": "serve:" + "E" * 43 + "=",
    "STOPCSAM_LOOKUP_KEY": "serve-test-lookup-key",
    "STOPCSAM_HTTPS": "false",
    "ALLOWED_HOSTS": "127.0.0.1",
    "PYTHONUNBUFFERED": "1",
}


def _embedded_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The embedded default (SQLite in tmp_path, no Redis) plus ``extra``."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STOPCSAM_", "DATABASE_URL", "REDIS_URL", "DJANGO_"))
    }
    return {**clean, **SERVER_ENV, "STOPCSAM_VAR_DIR": str(tmp_path), **extra}


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # A session of its own, so that uvicorn's workers are stopped with it.
    with log.open("wb") as output:
        return subprocess.Popen(
            args, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def test_serve_refuses_several_processes_without_redis(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    process = _start(
        [STOPCSAM, "serve", "--port", "0", "--processes", "2"], _embedded_env(tmp_path), log
    )
    try:
        returncode = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("serve started instead of refusing:\n" + log.read_text())
    finally:
        _stop(process)
    output = log.read_text()
    assert returncode != 0
    assert "(stopcsam.E004) --processes 2 needs REDIS_URL" in output
    assert "Traceback" not in output


@override_settings(STOPCSAM_PROCESSES=1, REDIS_URL="redis://127.0.0.1:6379/5")
def test_serve_tells_its_workers_how_many_processes_serve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STOPCSAM_PROCESSES", "1")  # and restored afterwards
    started: dict[str, Any] = {}

    def uvicorn_run(app: str, **options: Any) -> None:
        started.update(options, environment=os.environ.get("STOPCSAM_PROCESSES"))

    monkeypatch.setattr("uvicorn.run", uvicorn_run)
    call_command("serve", processes=3)
    assert started["workers"] == 3
    assert started["environment"] == "3"


@pytest.mark.parametrize(
    ("processes", "deployment", "external", "runs_jobs"),
    [
        (1, 1, False, True),  # the embedded default
        (2, 2, False, True),  # one command serves the deployment: its supervisor runs them
        (1, 2, False, False),  # one of several serve commands: scheduling_worker runs them
        (2, 2, True, False),  # an external worker is set
    ],
)
def test_the_background_jobs_run_once_per_deployment(
    processes: int,
    deployment: int,
    external: bool,
    runs_jobs: bool,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    settings.STOPCSAM_PROCESSES = deployment
    settings.STOPCSAM_EXTERNAL_WORKERS = external
    settings.REDIS_URL = "redis://127.0.0.1:6379/5"
    started: list[str] = []
    settings.STOPCSAM_EMBEDDED_WORKERS = ["stopcsam.core.tests.test_serve.record_worker"]
    monkeypatch.setattr(sys.modules[__name__], "STARTED", started)
    monkeypatch.setenv("STOPCSAM_PROCESSES", str(deployment))
    monkeypatch.setattr("uvicorn.run", lambda app, **options: None)
    call_command("serve", processes=processes)
    assert started == (["worker"] if runs_jobs else [])


STARTED: list[str] = []


def record_worker() -> None:
    STARTED.append("worker")


def test_the_application_loads_inside_a_running_event_loop(tmp_path: Path) -> None:
    """As in every worker of ``serve --processes N``: uvicorn imports the application inside
    its event loop, and the system checks then ask SQLite whether it supports JSON."""
    code = "import asyncio\nasync def load():\n    import stopcsam.asgi\nasyncio.run(load())"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=_embedded_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_several_processes_answer_on_the_embedded_database(tmp_path: Path) -> None:
    port = _free_port()
    env = _embedded_env(tmp_path, REDIS_URL=os.environ["REDIS_URL"])
    log = tmp_path / "serve.log"
    process = _start([STOPCSAM, "serve", "--port", str(port), "--processes", "2"], env, log)
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"http://127.0.0.1:{port}/healthz") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _answers(f"http://127.0.0.1:{port}/healthz"), log.read_text()
    finally:
        _stop(process)
    assert "SynchronousOnlyOperation" not in log.read_text()


def _post_status(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def test_the_served_application_refuses_a_body_larger_than_the_cap(tmp_path: Path) -> None:
    """Without nginx in front (the embedded default), a form's body of any size was taken, its
    file parts written to a temporary file: the served application caps it itself."""
    port = _free_port()
    env = _embedded_env(tmp_path, STOPCSAM_MAX_BODY_BYTES="4096")
    log = tmp_path / "serve.log"
    process = _start([STOPCSAM, "serve", "--port", str(port)], env, log)
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"http://127.0.0.1:{port}/healthz") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _answers(f"http://127.0.0.1:{port}/healthz"), log.read_text()
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        url = f"http://127.0.0.1:{port}/en/login/"
        assert _post_status(url, b"codename=" + b"x" * 5000, form) == 413
        assert _post_status(url, b"codename=lipa", form) == 403  # taken: refused by CSRF
    finally:
        _stop(process)
