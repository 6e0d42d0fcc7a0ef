"""Faults, for real: two ASGI server processes share a private Redis and the database. Pairs
chat across the two processes while one process is killed with SIGKILL and restarted and
Redis is restarted once. Every acknowledged message must be stored exactly once and reach the
other side exactly once, in order.

A send during a database outage, for real (PostgreSQL refusing every connection, or SQLite
locked by another process), gets an error and no acknowledgement; sent again once the
database is back, it is stored once and reaches the other side once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.server import (
    SERVER_ENV,
    STOPCSAM,
    _wait_until_up,
    free_port,
    postgres_database,
    run_in_own_loop,
)

PAIRS = 4
MESSAGES = 15  # per client
SETUP = """
import json
from django.contrib.sessions.backends.db import SessionStore
from django_otp import DEVICE_ID_SESSION_KEY
from stopcsam.accounts.demo_data import seed_demo
from stopcsam.accounts.models import StaffUser
from stopcsam.accounts.services import participant_create
from stopcsam.chat import services
from stopcsam.core import clock
from datetime import timedelta
seed_demo()
therapist = StaffUser.objects.get(username="therapist-de")
device = therapist.totpdevice_set.get()
out = []
for n in range(PAIRS):
    participant, _ = participant_create(language="en")
    start = clock.now()
    session = services.session_sync(appointment={
        "appointment_ref": f"fault-{n}", "participant_id": participant.pk,
        "therapist_id": therapist.pk, "starts_at": start,
        "ends_at": start + timedelta(minutes=50), "number": 1, "of": 4, "language": "en"})
    services.session_enter(session=session, role="participant")
    services.session_admit(session=session, therapist=therapist)
    p = SessionStore(); p["participant_id"] = participant.pk; p.create()
    t = SessionStore()
    t["_auth_user_id"] = str(therapist.pk)
    t["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    t["_auth_user_hash"] = therapist.get_session_auth_hash()
    t[DEVICE_ID_SESSION_KEY] = device.persistent_id
    t.create()
    out.append({"public_id": session.public_id, "p": p.session_key, "t": t.session_key})
print("JSON" + json.dumps(out))
"""
COUNT = """
from stopcsam.chat.models import ChatMessage
from django.db.models import Count
import json
rows = ChatMessage.objects.values("session__public_id", "sender", "client_id")
rows = rows.annotate(n=Count("id"))
print("JSON" + json.dumps([[r["session__public_id"], r["client_id"], r["n"]] for r in rows]))
"""


@dataclass
class Cluster:
    env: dict[str, str]
    ports: list[int]
    tmp: Path
    redis_port: int
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    redis: subprocess.Popen[bytes] | None = None

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [STOPCSAM, *args], env=self.env, capture_output=True, text=True, check=True, timeout=60
        )
        return done.stdout

    def shell_json(self, code: str) -> Any:
        out = self.manage("shell", "-c", code)
        return json.loads(out.split("JSON", 1)[1])

    def start(self, port: int) -> None:
        log = (self.tmp / f"server-{port}.log").open("a")
        self.processes[port] = subprocess.Popen(
            [STOPCSAM, "serve", "--port", str(port)], env=self.env, stdout=log, stderr=log
        )
        _wait_until_up(f"http://127.0.0.1:{port}", self.processes[port])

    def kill(self, port: int) -> None:
        self.processes[port].send_signal(signal.SIGKILL)
        self.processes[port].wait()

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                import socket

                socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.2).close()
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop_redis(self) -> None:
        if self.redis is not None:
            self.redis.kill()
            self.redis.wait()

    @contextlib.contextmanager
    def database_outage(self) -> Iterator[None]:
        """PostgreSQL: the database takes no connections and its open ones are cut. SQLite:
        another process holds the write lock (the server gives up after its 20 s timeout)."""
        url = self.env.get("DATABASE_URL", "")
        if url:
            import psycopg

            name = url.rsplit("/", 1)[1]
            with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    [name],
                )
                try:
                    yield
                finally:
                    admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            return
        import sqlite3

        locker = sqlite3.connect(
            Path(self.env["STOPCSAM_VAR_DIR"]) / "stopcsam.sqlite3", isolation_level=None
        )
        locker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            locker.execute("ROLLBACK")
            locker.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    base_db = os.environ.get("DATABASE_URL", "")
    with postgres_database(base_db) if base_db else contextlib.nullcontext("") as database_url:
        redis_port = free_port()
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("STOPCSAM_", "DATABASE_URL", "REDIS_URL", "DJANGO_"))
            },
            **SERVER_ENV,
            "STOPCSAM_VAR_DIR": str(tmp_path / "var"),
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "CHAT_REDIS_PREFIX": "fault",
        }
        if database_url:
            env["DATABASE_URL"] = database_url
        running = Cluster(env, [free_port(), free_port()], tmp_path, redis_port)
        running.start_redis()
        try:
            running.manage("migrate", "--verbosity", "0")
            for port in running.ports:
                running.start(port)
            yield running
        finally:
            for process in running.processes.values():
                process.kill()
                process.wait()
            running.stop_redis()


@dataclass
class Client:
    url: str
    origin: str
    sid: str
    role: str
    sent: list[str] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)
    seen: list[int] = field(default_factory=list)
    bodies: dict[int, tuple[str, str]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # client id -> body
    last: int = 0
    connections: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        from websockets.asyncio.client import connect

        self.texts = {
            f"{self.role}-{n:04d}-{self.sid[:6]}": f"{self.role} message {n}"
            for n in range(MESSAGES)
        }
        order = list(self.texts)
        while not stop.is_set():
            try:
                headers = {"Cookie": f"sid={self.sid}", "Origin": self.origin}
                async with connect(self.url, additional_headers=headers, open_timeout=3) as ws:
                    self.connections += 1
                    await ws.send(json.dumps({"type": "hello", "after": self.last}))
                    sender = asyncio.create_task(self.send_all(ws, order))
                    try:
                        await self.receive(ws, stop)
                    finally:
                        sender.cancel()
            except Exception:
                await asyncio.sleep(0.2)

    async def send_all(self, ws: Any, order: list[str]) -> None:
        """Send, then resend whatever is still unacknowledged, always with the same id."""
        while len(self.acked) < len(order):
            for client_id in order:
                if client_id not in self.acked:
                    frame = {"type": "send", "client_id": client_id, "body": self.texts[client_id]}
                    await ws.send(json.dumps(frame))
                    await asyncio.sleep(0.25)
            await asyncio.sleep(0.5)

    async def receive(self, ws: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
            except TimeoutError:
                continue
            if frame["type"] == "ack":
                seq = frame["seq"]
                self.acked[frame["client_id"]] = seq
                assert seq <= self.last + 1, (seq, self.last)  # an ack never overtakes
                if seq == self.last + 1:  # our own new message: the ack is our copy
                    self.seen.append(seq)
                    self.bodies[seq] = (self.role, self.texts[frame["client_id"]])
                    self.last = seq
            elif frame["type"] == "message":
                assert frame["seq"] == self.last + 1, (frame["seq"], self.last)  # in order, no gap
                self.seen.append(frame["seq"])
                self.bodies[frame["seq"]] = (frame["sender"], frame["body"])
                self.last = frame["seq"]


def drive(
    clients: list[Client],
    done: Callable[[], bool],
    *,
    seconds: float,
    meanwhile: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run the clients until ``done()`` or ``seconds`` have passed, with ``meanwhile`` (the
    faults) running beside them. In a thread of its own: Playwright's sync API may hold an
    event loop in this one."""

    async def scenario() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(c.run(stop)) for c in clients]
        if meanwhile is not None:
            await meanwhile()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not done():
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    run_in_own_loop(scenario())


def test_nothing_is_lost_or_doubled_through_a_killed_process_and_a_redis_restart(
    cluster: Cluster,
) -> None:
    sessions = cluster.shell_json(SETUP.replace("PAIRS", str(PAIRS)))
    a, b = cluster.ports
    clients = []
    for item in sessions:
        path = f"/ws/chat/{item['public_id']}"
        clients.append(
            Client(f"ws://127.0.0.1:{a}{path}", f"http://127.0.0.1:{a}", item["p"], "participant")
        )
        clients.append(
            Client(f"ws://127.0.0.1:{b}{path}", f"http://127.0.0.1:{b}", item["t"], "therapist")
        )

    async def faults() -> None:
        await asyncio.sleep(0.6)
        cluster.kill(a)  # SIGKILL mid-run
        await asyncio.sleep(0.3)
        await asyncio.to_thread(cluster.start, a)
        await asyncio.sleep(0.3)
        cluster.stop_redis()  # and Redis goes away and comes back once
        await asyncio.sleep(0.3)
        cluster.start_redis()

    drive(
        clients,
        lambda: all(len(c.acked) == MESSAGES and len(c.seen) == 2 * MESSAGES for c in clients),
        seconds=40,
        meanwhile=faults,
    )
    assert all(c.connections >= 2 for c in clients[::2])  # the kill really cut them off
    stored = cluster.shell_json(COUNT)
    assert all(n == 1 for _, _, n in stored)  # every message stored exactly once
    assert len(stored) == PAIRS * 2 * MESSAGES
    for participant, therapist in zip(clients[::2], clients[1::2], strict=True):
        for side in (participant, therapist):
            assert len(side.acked) == MESSAGES  # every message acknowledged
            assert side.seen == list(range(1, 2 * MESSAGES + 1))  # each once, in order
        acked_seqs = set(participant.acked.values()) | set(therapist.acked.values())
        assert acked_seqs == set(range(1, 2 * MESSAGES + 1))
        assert participant.bodies == therapist.bodies  # both sides saw the same conversation
    for log in cluster.tmp.glob("server-*.log"):  # no client address, no message text
        text = log.read_text()
        assert not re.search(r"127\.0\.0\.1:\d+ - ", text)
        assert "message 1" not in text


async def joined(port: int, path: str, sid: str) -> Any:
    from websockets.asyncio.client import connect

    headers = {"Cookie": f"sid={sid}", "Origin": f"http://127.0.0.1:{port}"}
    ws = await connect(f"ws://127.0.0.1:{port}{path}", additional_headers=headers)
    await ws.send(json.dumps({"type": "hello", "after": 0}))
    while json.loads(await ws.recv())["type"] != "caught_up":
        pass
    return ws


async def until(ws: Any, kind: str, timeout: float) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] in (kind, "ack", "error"):
                assert frame["type"] == kind, frame
                return frame


LOGOUT = """
from importlib import import_module
from django.conf import settings
import_module(settings.SESSION_ENGINE).SessionStore(session_key="KEY").flush()
print("JSON[]")
"""


def test_a_logout_in_another_process_closes_the_socket_at_once(cluster: Cluster) -> None:
    """The participant's socket is on one server process; the sign-in ends in another
    process (here a management shell): the recheck crosses Redis and the socket closes
    (4403) long before its first safety poll (a tick is 60 s)."""
    (item,) = cluster.shell_json(SETUP.replace("PAIRS", "1"))
    path = f"/ws/chat/{item['public_id']}"

    async def scenario() -> int | None:
        from websockets.exceptions import ConnectionClosed

        participant = await joined(cluster.ports[0], path, item["p"])
        therapist = await joined(cluster.ports[1], path, item["t"])
        await asyncio.to_thread(cluster.shell_json, LOGOUT.replace("KEY", item["p"]))
        code = None
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    await participant.recv()
        code = participant.close_code
        await therapist.send(json.dumps({"type": "ping"}))
        assert (await until(therapist, "pong", 5))["type"] == "pong"  # the other side stays
        await therapist.close()
        return code

    assert run_in_own_loop(scenario()) == 4403


def test_a_send_during_a_database_outage_gets_an_error_and_no_ack(cluster: Cluster) -> None:
    (item,) = cluster.shell_json(SETUP.replace("PAIRS", "1"))
    a, b = cluster.ports
    path = f"/ws/chat/{item['public_id']}"

    async def scenario() -> None:
        participant = await joined(a, path, item["p"])
        therapist = await joined(b, path, item["t"])
        first = {"type": "send", "client_id": "outage-0001", "body": "I am worried about my urges"}
        await participant.send(json.dumps(first))
        assert (await until(participant, "ack", 10))["seq"] == 1
        assert (await until(therapist, "message", 10))["seq"] == 1
        second = {"type": "send", "client_id": "outage-0002", "body": "Are you still there?"}
        with cluster.database_outage():
            await participant.send(json.dumps(second))
            error = await until(participant, "error", 40)  # no ack came before it
            assert (error["code"], error["client_id"]) == ("unavailable", "outage-0002")
        # The client sends it again, same id, after a second, as chat.js does, until it is
        # acknowledged: just after the outage the writer may still be finishing the batch
        # it was held up in, and a send is answered unavailable at once meanwhile. Stored once
        # either way: on SQLite the writer may get the lock only after its sender was
        # answered, and the resend then finds the message (a duplicate).
        async with asyncio.timeout(30):
            while True:
                await participant.send(json.dumps(second))
                answer = json.loads(await participant.recv())
                while answer["type"] not in ("ack", "error"):  # its stored copy, say
                    answer = json.loads(await participant.recv())
                if answer["type"] == "ack":
                    break
                assert (answer["type"], answer["code"]) == ("error", "unavailable"), answer
                await asyncio.sleep(1)
        assert answer["seq"] == 2
        got = await until(therapist, "message", 10)
        assert (got["seq"], got["body"]) == (2, "Are you still there?")
        await participant.close()
        await therapist.close()

    run_in_own_loop(scenario())
    stored = cluster.shell_json(COUNT)
    assert sorted((client_id, n) for _, client_id, n in stored) == [
        ("outage-0001", 1),
        ("outage-0002", 1),
    ]
