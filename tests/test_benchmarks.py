"""Every benchmark in bench/ runs in CI, at a tiny size: it must still start its real
servers, do its work without losing anything, and print the one JSON object with its goals
that closing notes quote. The figures themselves are measured at full size, outside CI, where
a shared machine's noise does not fail a build."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.server import postgres_database, run_in_own_loop

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCALED = bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))


def run_bench(name: str, *args: str, database_option: bool = False) -> dict[str, Any]:
    """``database_option``: the benchmark takes its database as ``--database-url``."""
    base = os.environ.get("DATABASE_URL")
    with postgres_database(base) if base else contextlib.nullcontext("") as database_url:
        # A benchmark that follows DATABASE_URL gets a fresh database of its own, never the
        # suite's base database.
        env = {**os.environ, "DATABASE_URL": database_url} if base else None
        if database_option:
            args = (*args, "--database-url", database_url)
        done = subprocess.run(
            [sys.executable, str(BENCH / f"{name}.py"), *args],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            env=env,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)  # one JSON object, nothing else on stdout
    assert isinstance(result, dict)
    goals = result["goals"]
    assert goals, "a benchmark names the goals it measures"
    for goal in goals:
        assert set(goal) == {"name", "value", "target", "better"}, goal
        assert goal["better"] in ("lower", "higher"), goal
        assert isinstance(goal["value"], int | float), goal
    return result


def goal_values(result: dict[str, Any], word: str) -> list[Any]:
    return [goal["value"] for goal in result["goals"] if word in goal["name"]]


def test_chat_bench_loses_nothing() -> None:
    setups = "embedded,scaled" if SCALED else "embedded"
    result = run_bench(
        "chat", "--sessions", "3", "--seconds", "1", "--burst", "2", "--setups", setups
    )
    for setup in [*setups.split(","), "websockets_relay", "uvicorn_relay"]:
        (level,) = result[setup]
        # One message per client in the 1 s of steady load (one every 2 s), then 2 each.
        assert level["messages_sent"] == level["delivered"] == 6, (setup, level)
        assert level["burst"]["messages_sent"] == level["burst"]["delivered"] == 12, setup
        frames = level["frames_per_message"]
        if setup.endswith("relay"):  # up once, down to both clients of the room
            assert frames == {"up": 1.0, "down": 2.0}, (setup, level)
            continue
        assert level["acked"] == 6 and level["errors"] == 0, (setup, level)
        # Up: the message and the other side's read marker. Down: the ack, the message, and
        # the read marker when it found no ack or message to ride on (it may come after the
        # phase: the server holds it for up to a second).
        assert frames["up"] == 2.0 and 2.0 <= frames["down"] <= 3.0, (setup, level)
        # A 1 s run may leave the relay's CPU time under the 10 ms clock tick: no ratio.
        (relay,) = result["uvicorn_relay"]
        floor = relay["server_cpu_us_per_message"]
        ratio = round(level["server_cpu_us_per_message"] / floor, 2) if floor else None
        assert level["server_cpu_over_uvicorn_relay"] == ratio, (setup, level, relay)
        per_frame = round(floor / 3 * (2 + frames["down"]), 1) if floor else None
        assert level["uvicorn_floor_for_these_frames_us"] == per_frame, (setup, level, relay)
        # A lone commit per message at the level's rate (3 a second) for the run's 1 s.
        lone = level["lone_commit"]
        assert lone["commits"] == 3 and lone["cpu_us_per_commit"] > 0, (setup, level)
        expected = round(per_frame + lone["cpu_us_per_commit"], 1) if per_frame else None
        assert level["floor_us_per_message"] == expected, (setup, level)
    loop = result["machine"]["python_loop_seconds"]
    assert len(loop) == 2 and all(seconds > 0 for seconds in loop), loop
    assert goal_values(result, "lost or duplicated") == [0] * len(setups.split(","))


@pytest.mark.parametrize("vendor", ["sqlite", "postgresql"])
def test_chat_bench_commit_floor_commits_each_row_alone_at_the_rate(
    vendor: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    base = os.environ.get("DATABASE_URL", "")
    if vendor == "postgresql" and not base:
        pytest.skip("needs DATABASE_URL")
    chat = chat_bench_module(monkeypatch)
    with postgres_database(base) if vendor == "postgresql" else contextlib.nullcontext("") as url:
        target = url or str(tmp_path / "floor.sqlite3")
        floor = chat.commit_floor(target, rate=100, seconds=0.2)
        assert floor["commits"] == 20, floor
        assert floor["commits_per_second"] <= 105, floor  # it waits for the rate, alone
        assert floor["cpu_us_per_commit"] > 0, floor
        if vendor == "postgresql":
            import psycopg

            with psycopg.connect(url) as db:
                cursor = db.execute("SELECT count(*), max(seq) FROM floor_message")
                assert cursor.fetchone() == (20, 19)
        else:
            import sqlite3

            with contextlib.closing(sqlite3.connect(target)) as db:
                row = db.execute("SELECT count(*), max(seq) FROM floor_message").fetchone()
                assert row == (20, 19)


def chat_bench_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = importlib.util.spec_from_file_location("bench_chat", BENCH / "chat.py")
    assert spec is not None and spec.loader is not None
    chat = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_chat", chat)  # its dataclasses look it up there
    spec.loader.exec_module(chat)
    return chat


def test_chat_bench_rate_counts_from_the_first_send_to_the_last_arrival(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chat = chat_bench_module(monkeypatch)
    clock = iter([10.0, 10.0, 10.5, 11.0])
    monkeypatch.setattr(chat, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    tally = chat.Tally()
    tally.sending("a")
    tally.sending("b")
    assert tally.arrived("a") and tally.arrived("b")
    # Two messages in the second from the first send to the last arrival, whatever the
    # phase's wall time (the clients' ramp, the interval after their last send, the wait).
    result = chat.summary(tally, 20.0)
    assert (result["messages_per_second"], result["seconds"]) == (2.0, 20.0)
    assert (result["p50_ms"], result["max_ms"]) == (1000.0, 1000.0)


def test_chat_bench_clients_each_send_seconds_over_interval_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """However the timers wake: with a deadline, a client whose timer woke early sent once
    more at the very end, and with sleeps that return at once it would send until the
    deadline."""
    chat = chat_bench_module(monkeypatch)
    sent: list[str] = []

    class Client:
        def __init__(self, name: str) -> None:
            self.name = name

        async def send(self) -> None:
            sent.append(self.name)

    async def at_once(seconds: float) -> None:
        return None

    monkeypatch.setattr(chat.asyncio, "sleep", at_once)
    run_in_own_loop(chat.drive([Client("a"), Client("b")], seconds=0.2, interval=0.05))
    assert sorted(sent) == ["a"] * 4 + ["b"] * 4


def test_deterrence_bench() -> None:
    result = run_bench("deterrence")
    assert goal_values(result, "queries per second")[0] > 0


def test_journey_bench() -> None:
    result = run_bench("journey", "--participants", "2", "--seconds", "2", "--stress-seconds", "0")
    assert result["journeys"] > 0
    assert goal_values(result, "errors") == [0]


def test_study_bench() -> None:
    result = run_bench(
        "study", "--participants", "30", "--points", "2", "--items", "3", "--repeat", "1"
    )
    assert goal_values(result, "export_seconds")[0] > 0


@pytest.mark.skipif(not os.environ.get("DATABASE_URL"), reason="needs PostgreSQL (DATABASE_URL)")
def test_scheduling_bench() -> None:
    result = run_bench(
        "scheduling",
        *("--therapists", "5", "--bookings", "10", "--runs", "3"),
        *("--clients", "2", "--seconds", "1"),
        database_option=True,
    )
    assert goal_values(result, "double_bookings") == [0]
