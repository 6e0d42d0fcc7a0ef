"""Fan-out between websocket connections: a wake-up after commit, never the source of truth.

A connection subscribes to its session and receives small events (``msg`` with the stored
ciphertext, ``state``, ``typing``, ``read``, ``resync``); events for the whole process, such as
``recheck`` of a sign-in, go to the channel ``EVERYONE``. A lost event costs only latency:
connections fetch anything they missed from the database (on a gap, on ``resync`` or
``recheck``, and on a periodic poll). Two implementations: in-process (the embedded default)
and Redis pub/sub (several processes). ``publish`` is thread-safe and never raises.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from django.conf import settings

from stopcsam.chat.protocol import ENCODER

logger = logging.getLogger("stopcsam.chat.hub")

Event = dict[str, Any]
REDIS_RETRY_SECONDS = 0.5
KEEPALIVE = {socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 5, socket.TCP_KEEPCNT: 3}
Listener = Callable[[Event], None]
EVERYONE = 0  # no chat session has this id: events for every process, not one session


class Hub(Protocol):
    def publish(self, session_id: int, event: Event) -> None: ...

    def publish_many(self, events: list[tuple[int, Event]]) -> None: ...

    async def subscribe(self, session_id: int, listener: Listener) -> None: ...

    async def unsubscribe(self, session_id: int, listener: Listener) -> None: ...


class InProcessHub:
    """Listeners live in this process's event loop; publishers may be any thread."""

    def __init__(self) -> None:
        self.listeners: dict[int, set[Listener]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def publish(self, session_id: int, event: Event) -> None:
        self.publish_many([(session_id, event)])

    def publish_many(self, events: list[tuple[int, Event]]) -> None:
        """Several events in order, handed to the event loop at once (a writer's batch)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.deliver_many(events)
        else:
            loop.call_soon_threadsafe(self.deliver_many, events)

    def deliver_many(self, events: list[tuple[int, Event]]) -> None:
        for session_id, event in events:
            self.deliver(session_id, event)

    def deliver(self, session_id: int, event: Event) -> None:
        for listener in tuple(self.listeners.get(session_id, ())):
            listener(event)

    def deliver_all(self, event: Event) -> None:
        """To every session's listeners (not to EVERYONE's, which are no session's)."""
        for session_id in tuple(self.listeners):
            if session_id != EVERYONE:
                self.deliver(session_id, event)

    async def subscribe(self, session_id: int, listener: Listener) -> None:
        self.loop = asyncio.get_running_loop()
        self.listeners.setdefault(session_id, set()).add(listener)

    async def unsubscribe(self, session_id: int, listener: Listener) -> None:
        found = self.listeners.get(session_id)
        if found is not None:
            found.discard(listener)
            if not found:
                del self.listeners[session_id]


class RedisHub(InProcessHub):
    """Local listeners get events directly; other processes get them through Redis.

    A batch of events is one Redis message on one channel that every process subscribes to:
    a message per event cost each process a Redis receive per event (bench/chat.py). A
    process skips its own batches before decoding them. After Redis comes back, every local
    connection is told to ``recheck`` (its sign-in, then a resync from the database), so
    nothing published during the outage is missed. Sessions whose wake-up could not be
    published are told to ``resync`` with the next publish that gets through.
    """

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        import redis

        self.url = url
        pool = redis.ConnectionPool.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        # Pub/sub channels ignore Redis's database number: two deployments on one Redis, each
        # on its own database, would hear each other's wake-ups under one channel name.
        self.channel = f"{prefix}:{pool.connection_kwargs.get('db', 0)}:chat"
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}\n".encode()
        self.connection = pool.make_connection()
        self.publishing = threading.Lock()
        self.publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chat-publish")
        self.listener_task: asyncio.Task[None] | None = None
        self.unsent: set[int] = set()
        self.unsent_lock = threading.Lock()
        self.down_until = 0.0  # no publish before this (time.monotonic) after a failed one
        self.retry: threading.Timer | None = None  # pays the resyncs owed after the pause

    def publish_many(self, events: list[tuple[int, Event]]) -> None:
        super().publish_many(events)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # the writer's thread, or a reader's: it may wait for Redis
            self.publish_remote(events)
            return
        # An event loop never waits for Redis (a typing indicator): with Redis unreachable, a
        # publish waits out the socket timeout, and every connection of the loop with it.
        self.publisher.submit(self.publish_remote, events)

    def publish_remote(self, events: list[tuple[int, Event]]) -> None:
        """After a failed publish, Redis is left alone for REDIS_RETRY_SECONDS: each
        attempt at an unreachable Redis waits out the socket timeout, and the writer would
        wait that long with every batch, its senders' acks with it. Then the resyncs owed
        go out, with the next publish or on their own."""
        with self.unsent_lock:
            owed, self.unsent = self.unsent, set()
        outgoing = [*((session_id, {"t": "resync"}) for session_id in sorted(owed)), *events]
        if not outgoing:
            return
        if time.monotonic() < self.down_until:
            self.owe(outgoing)
            return
        payload = self.origin + ENCODER.encode(outgoing).encode()
        try:
            self.send(payload)
        except Exception:
            logger.warning("chat hub: Redis publish failed; the sessions resync when it is back")
            self.down_until = time.monotonic() + REDIS_RETRY_SECONDS
            self.owe(outgoing)

    def owe(self, outgoing: list[tuple[int, Event]]) -> None:
        """Owe these sessions a resync, and try again once the pause is over, so that a quiet
        session is not left waiting for the next publish (or the safety poll)."""
        with self.unsent_lock:
            self.unsent |= {session_id for session_id, _ in outgoing}
            if self.retry is not None:
                return
            wait = max(0.0, self.down_until - time.monotonic()) + 0.01
            retry = self.retry = threading.Timer(wait, self.pay_owed)
            retry.daemon = True
        retry.start()

    def pay_owed(self) -> None:
        with self.unsent_lock:
            self.retry = None
        self.publish_remote([])

    def send(self, payload: bytes) -> None:
        """PUBLISH on the hub's own connection, one publisher at a time. Through redis-py's
        client (its pool and its retries) a publish cost 150-166 us of CPU, on the connection
        itself 90-99 us (back to back, on the benchmark's machine). A connection that failed
        is closed, and the next publish opens a new one."""
        with self.publishing:
            try:
                self.connection.send_command("PUBLISH", self.channel, payload)
                self.connection.read_response()
            except BaseException:
                self.connection.disconnect()
                raise

    async def subscribe(self, session_id: int, listener: Listener) -> None:
        await super().subscribe(session_id, listener)
        if self.listener_task is None or self.listener_task.done():
            self.listener_task = asyncio.get_running_loop().create_task(self.listen())

    async def listen(self) -> None:
        import redis.asyncio as aioredis

        while True:
            try:
                # TCP keepalive: a Redis that vanished without closing the connection (a
                # network cut) is noticed within half a minute, and the resync follows.
                client = aioredis.Redis.from_url(
                    self.url,
                    socket_connect_timeout=1,
                    socket_keepalive=True,
                    socket_keepalive_options=KEEPALIVE,
                )
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    # Whatever other processes published while this one was not subscribed
                    # is lost, a logout's ``recheck`` among them: every connection here
                    # checks its sign-in again and resyncs (a ``recheck`` does both, with
                    # one read). A ``resync`` alone left a socket of a signed-out person
                    # open until its safety poll, two ticks later (a review finding).
                    self.deliver_all({"t": "recheck"})
                    async for message in pubsub.listen():
                        self.receive(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("chat hub: Redis subscription lost; retrying")
                await asyncio.sleep(0.5)

    def receive(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        if message.get("type") != "message" or not isinstance(data, bytes):
            return
        if data.startswith(self.origin):
            return  # our own batch: its listeners here were woken directly
        _, _, batch = data.partition(b"\n")
        for session_id, event in json.loads(batch):
            if session_id in self.listeners:
                self.deliver(session_id, event)


_hub: Hub | None = None
_hub_lock = threading.Lock()


def get_hub() -> Hub:
    global _hub
    with _hub_lock:
        if _hub is None:
            _hub = (
                RedisHub(settings.REDIS_URL, settings.CHAT_REDIS_PREFIX)
                if settings.REDIS_URL
                else InProcessHub()
            )
        return _hub


def reset_hub() -> None:
    """For tests: forget the process hub so the next one follows the current settings."""
    global _hub
    with _hub_lock:
        _hub = None
