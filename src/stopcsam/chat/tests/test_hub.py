from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from typing import Any

import pytest

from stopcsam.chat.hub import EVERYONE, REDIS_RETRY_SECONDS, InProcessHub, RedisHub

REDIS_URL = os.environ.get("REDIS_URL", "")


def test_the_in_process_hub_wakes_listeners_of_that_session_only() -> None:
    async def scenario() -> list[Any]:
        hub = InProcessHub()
        got: list[Any] = []
        await hub.subscribe(1, got.append)
        await hub.subscribe(2, lambda e: got.append(("other", e)))
        await asyncio.to_thread(hub.publish, 1, {"t": "state"})  # from another thread
        await asyncio.sleep(0.05)
        await hub.unsubscribe(1, got.append)
        hub.publish(1, {"t": "state"})
        return got

    assert asyncio.run(scenario()) == [{"t": "state"}]


def test_a_resync_of_every_session_is_not_sent_to_the_process_wide_listeners() -> None:
    """A resync goes to each session's listeners once; those on EVERYONE (the sign-in
    rechecks) are no session's and would pass it on to every connection a second time."""

    async def scenario() -> tuple[list[Any], list[Any]]:
        hub = InProcessHub()
        sessions: list[Any] = []
        everyone: list[Any] = []
        await hub.subscribe(3, sessions.append)
        await hub.subscribe(EVERYONE, everyone.append)
        hub.deliver_all({"t": "resync"})
        hub.publish(EVERYONE, {"t": "recheck", "who": ["staff-1"]})
        return sessions, everyone

    assert asyncio.run(scenario()) == ([{"t": "resync"}], [{"t": "recheck", "who": ["staff-1"]}])


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL")
def test_the_redis_hub_carries_a_process_wide_event_to_the_other_process() -> None:
    async def scenario() -> list[Any]:
        a, b, heard = await publisher_and_listener(EVERYONE)
        await asyncio.to_thread(a.publish, EVERYONE, {"t": "recheck", "who": ["staff-2"]})
        await asyncio.sleep(0.3)
        stop_listening(b)
        return heard

    assert asyncio.run(scenario()) == [{"t": "recheck", "who": ["staff-2"]}]


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL")
def test_the_redis_hub_carries_events_between_processes_once() -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[list[Any], list[Any]]:
        a, b = RedisHub(REDIS_URL, prefix), RedisHub(REDIS_URL, prefix)
        on_a: list[Any] = []
        on_b: list[Any] = []
        await a.subscribe(7, on_a.append)
        await b.subscribe(7, on_b.append)
        await asyncio.sleep(0.3)  # both pattern subscriptions are in place
        on_a.clear()
        on_b.clear()  # the recheck each sends on (re)connect
        await asyncio.to_thread(a.publish, 7, {"t": "msg", "seq": 1})
        await asyncio.sleep(0.3)
        for hub in (a, b):
            assert hub.listener_task is not None
            hub.listener_task.cancel()
        return on_a, on_b

    on_a, on_b = asyncio.run(scenario())
    assert on_a == [{"t": "msg", "seq": 1}]  # locally, not echoed back through Redis
    assert on_b == [{"t": "msg", "seq": 1}]


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL")
def test_deployments_on_other_redis_databases_do_not_hear_each_other() -> None:
    """Pub/sub ignores the database number; the channel name carries it."""
    base = REDIS_URL.rsplit("/", 1)[0]

    async def scenario() -> list[Any]:
        here, there = RedisHub(f"{base}/7", "stopcsam"), RedisHub(f"{base}/8", "stopcsam")
        heard: list[Any] = []
        await there.subscribe(5, heard.append)
        await asyncio.sleep(0.3)
        heard.clear()
        await asyncio.to_thread(here.publish, 5, {"t": "typing", "sender": "participant"})
        await asyncio.sleep(0.3)
        stop_listening(there)
        return heard

    assert asyncio.run(scenario()) == []


async def publisher_and_listener(*sessions: int) -> tuple[RedisHub, RedisHub, list[Any]]:
    """Two hubs on one prefix, as in two processes: the first publishes, and the second
    listens to ``sessions``; what it heard on connecting (a recheck) is cleared."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    a, b = RedisHub(REDIS_URL, prefix), RedisHub(REDIS_URL, prefix)
    heard: list[Any] = []
    for session_id in sessions:
        await b.subscribe(session_id, heard.append)
    await asyncio.sleep(0.3)  # the subscription is in place
    heard.clear()
    return a, b, heard


def stop_listening(hub: RedisHub) -> None:
    assert hub.listener_task is not None
    hub.listener_task.cancel()


def test_a_redis_outage_does_not_break_publishing() -> None:
    hub = RedisHub("redis://127.0.0.1:1/0", "test")
    hub.publish(1, {"t": "state"})  # no exception: peers catch up by polling
    forget_owed(hub)


def forget_owed(hub: RedisHub) -> None:
    """Stop a hub whose Redis never comes back from retrying after the test."""
    with hub.unsent_lock:
        hub.unsent.clear()
        if hub.retry is not None:
            hub.retry.cancel()


def test_after_a_failed_publish_the_hub_leaves_redis_alone_for_a_moment() -> None:
    hub = RedisHub("redis://127.0.0.1:1/0", "test")  # nothing listens there
    tried: list[bytes] = []
    send = hub.send

    def counting(payload: bytes) -> None:
        tried.append(payload)
        send(payload)

    hub.send = counting  # type: ignore[method-assign]
    hub.publish(1, {"t": "state"})
    hub.publish(2, {"t": "state"})  # not tried: the last attempt has just failed
    assert len(tried) == 1 and hub.unsent == {1, 2}
    time.sleep(REDIS_RETRY_SECONDS)
    hub.publish(3, {"t": "state"})
    assert len(tried) == 2 and hub.unsent == {1, 2, 3}
    assert tried[1].count(b'"resync"') == 2  # owed to the sessions of the two before
    forget_owed(hub)


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL")
def test_after_a_failed_publish_the_redis_hub_reconnects_and_owes_a_resync() -> None:
    async def scenario() -> list[Any]:
        a, b, on_b = await publisher_and_listener(7, 8)
        await asyncio.to_thread(a.publish, 7, {"t": "msg", "seq": 1})
        sock = a.connection._sock
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)  # the connection breaks under the hub
        await asyncio.to_thread(a.publish, 8, {"t": "msg", "seq": 1})  # fails, no exception
        await asyncio.sleep(REDIS_RETRY_SECONDS)
        await asyncio.to_thread(a.publish, 7, {"t": "msg", "seq": 2})  # a new connection
        await asyncio.sleep(0.3)
        stop_listening(b)
        return on_b

    assert asyncio.run(scenario()) == [
        {"t": "msg", "seq": 1},
        {"t": "resync"},  # for session 8, whose wake-up was lost
        {"t": "msg", "seq": 2},
    ]


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL")
def test_a_publish_on_the_event_loop_does_not_wait_for_redis() -> None:
    typing = {"t": "typing", "sender": "therapist", "active": True}

    async def scenario() -> tuple[float, list[Any]]:
        a, b, on_b = await publisher_and_listener(7)
        send = a.send

        def slow(payload: bytes) -> None:  # Redis answers late
            time.sleep(0.5)
            send(payload)

        a.send = slow  # type: ignore[method-assign]
        started = time.perf_counter()
        a.publish(7, typing)  # on the event loop, as the sockets publish typing indicators
        took = time.perf_counter() - started
        await asyncio.sleep(0.9)
        stop_listening(b)
        return took, on_b

    took, on_b = asyncio.run(scenario())
    assert took < 0.25
    assert on_b == [typing]  # sent all the same, from a thread of its own


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL")
def test_a_resync_owed_goes_out_after_the_pause_without_another_publish() -> None:
    async def scenario() -> list[Any]:
        a, b, on_b = await publisher_and_listener(7)
        send = a.send
        failures = [ConnectionError("Redis is away")]

        def once_failing(payload: bytes) -> None:
            if failures:
                raise failures.pop()
            send(payload)

        a.send = once_failing  # type: ignore[method-assign]
        await asyncio.to_thread(a.publish, 7, {"t": "msg", "seq": 1})  # lost
        await asyncio.sleep(REDIS_RETRY_SECONDS + 0.5)  # and nothing else is published
        stop_listening(b)
        return on_b

    assert asyncio.run(scenario()) == [{"t": "resync"}]


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL")
def test_after_its_subscription_comes_back_every_session_checks_its_sign_in_again() -> None:
    """The listening side lost Redis for a moment (here: its subscription killed): what other
    processes published meanwhile is lost, a logout's recheck among them. Each session's
    connections are told to recheck (sign-in and resync); a resync alone left a signed-out
    socket open until its safety poll."""
    import redis

    admin = redis.Redis.from_url(REDIS_URL)
    before = {client["id"] for client in admin.client_list(_type="pubsub")}

    async def scenario() -> list[Any]:
        _a, b, heard = await publisher_and_listener(4)
        for client in admin.client_list(_type="pubsub"):
            if client["id"] not in before:  # only this test's subscription, not another's
                admin.client_kill_filter(_id=client["id"])
        for _ in range(40):  # the hub waits 0.5 s, then subscribes again
            await asyncio.sleep(0.1)
            if heard:
                break
        stop_listening(b)
        return heard

    try:
        assert asyncio.run(scenario()) == [{"t": "recheck"}]
    finally:
        admin.close()
