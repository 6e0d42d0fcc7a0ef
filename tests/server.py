"""Start the real server (``stopcsam serve``, uvicorn) in its own process for end-to-end tests.

It runs the production settings module with test keys. On SQLite it gets its own file; when
DATABASE_URL is set it gets its own fresh PostgreSQL database, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STOPCSAM = str(Path(sys.executable).with_name("stopcsam"))
SERVER_ENV = {
    "DJANGO_SETTINGS_MODULE": "stopcsam.settings",
    "SECRET_KEY": "e2e-secret-key-" + "z" * 40,
    "STOPCSAM_ENCRYPTION_KEYS": "e2e:" + "D" * 43 + "=",
    "STOPCSAM_LOOKUP_KEY": "e2e-lookup-key",
    "STOPCSAM_HTTPS": "false",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "PYTHONUNBUFFERED": "1",
}


@dataclass
class RunningServer:
    url: str
    log_path: Path
    var_dir: Path
    database_url: str
    env: dict[str, str] = field(default_factory=dict)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [STOPCSAM, *args], env=self.env, capture_output=True, text=True, timeout=120, check=True
        )
        return result.stdout

    def shell_json(self, code: str) -> Any:
        """Run Python in ``stopcsam shell``; it prints ``JSON`` and then its answer."""
        return json.loads(self.manage("shell", "-c", code).split("JSON", 1)[1])


def run_in_own_loop[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run in a thread of its own: sync Playwright (the browser tests) leaves an event
    loop running in the main thread, where asyncio.run refuses to start."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    import psycopg

    name = f"stopcsam_e2e_{uuid.uuid4().hex[:10]}"
    admin_url = base_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_server(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[RunningServer]:
    base_db = os.environ.get("DATABASE_URL", "")
    with postgres_database(base_db) if base_db else contextlib.nullcontext("") as database_url:
        yield from _serve(tmp, database_url or "", extra_env or {})


def _serve(tmp: Path, database_url: str, extra_env: dict[str, str]) -> Iterator[RunningServer]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STOPCSAM_", "DATABASE_URL", "REDIS_URL", "DJANGO_"))
    }
    env = {**clean, **SERVER_ENV, "STOPCSAM_VAR_DIR": str(tmp / "var"), **extra_env}
    if database_url:
        env["DATABASE_URL"] = database_url
    port = free_port()
    server = RunningServer(
        url=f"http://127.0.0.1:{port}",
        log_path=tmp / "server.log",
        var_dir=tmp / "var",
        database_url=database_url,
        env=env,
    )
    server.manage("migrate", "--verbosity", "0")
    with server.log_path.open("w") as log:
        process = subprocess.Popen(
            [STOPCSAM, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_up(server.url, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not come up within 30 s")
