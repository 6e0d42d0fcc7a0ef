from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection

from stopcsam.chat import services, writer
from stopcsam.chat.models import ChatSession

pytestmark = pytest.mark.django_db(transaction=True)


def eventually(check: Any, timeout: float = 5.0) -> None:
    """Wait for the writer thread: a fixed sleep failed when it was slow to be scheduled."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the writer thread did not get there in time"
        time.sleep(0.01)


def test_read_markers_are_held_and_stored_together_and_none_is_lost_at_shutdown(
    live: ChatSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        services.message_send(
            session_id=live.pk, sender="therapist", client_id=f"c-writer-{n:04d}", body="Hello"
        )
    stored: list[list[tuple[str, int]]] = []
    real = writer.read_marks

    def read_marks(*, marks: list[services.ReadMark]) -> None:
        stored.append(sorted((mark.sender, mark.seq) for mark in marks))
        real(marks=marks)

    monkeypatch.setattr(writer, "read_marks", read_marks)
    marks = writer.MessageWriter()
    for seq in (1, 3, 2):
        marks.mark_read(services.ReadMark(live.pk, "participant", seq))
    marks.mark_read(services.ReadMark(live.pk, "therapist", 2))
    time.sleep(writer.READ_MARK_DELAY / 2)
    assert stored == []  # held for a moment
    eventually(lambda: stored)
    assert stored == [[("participant", 3), ("therapist", 2)]]  # the highest of each side
    marks.mark_read(services.ReadMark(live.pk, "therapist", 3))
    marks.jobs.put(None)
    marks.thread.join(timeout=10)
    assert stored[1:] == [[("therapist", 3)]]
    live.refresh_from_db()
    assert (live.participant_read_seq, live.therapist_read_seq) == (3, 3)


def test_only_the_first_read_marker_of_a_flush_wakes_the_writer(
    live: ChatSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.message_send(
        session_id=live.pk, sender="therapist", client_id="c-wakes-0001", body="Hello"
    )
    puts: list[object] = []

    class CountingQueue(queue.SimpleQueue):  # type: ignore[type-arg]
        def put(self, item: object, block: bool = True, timeout: float | None = None) -> None:
            puts.append(item)
            super().put(item, block, timeout)

    monkeypatch.setattr(writer.queue, "SimpleQueue", CountingQueue)
    marks = writer.MessageWriter()
    for _ in range(5):
        marks.mark_read(services.ReadMark(live.pk, "participant", 1))
    assert puts == [writer.MARKS]
    # stored by the flush it woke
    eventually(lambda: ChatSession.objects.get(pk=live.pk).participant_read_seq == 1)
    marks.mark_read(services.ReadMark(live.pk, "therapist", 1))
    assert puts == [writer.MARKS, writer.MARKS]  # after a flush, the next one wakes it again
    marks.jobs.put(None)
    marks.thread.join(timeout=10)
    live.refresh_from_db()
    assert live.therapist_read_seq == 1


def test_a_failing_read_marker_does_not_stop_the_writer(
    live: ChatSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*, marks: list[services.ReadMark]) -> None:
        raise RuntimeError("a defect")

    monkeypatch.setattr(writer, "read_marks", broken)
    marks = writer.MessageWriter()
    marks.mark_read(services.ReadMark(live.pk, "participant", 1))
    time.sleep(writer.READ_MARK_DELAY * 3)
    assert marks.thread.is_alive()  # still there to store the next message
    marks.jobs.put(None)
    marks.thread.join(timeout=10)
    assert not marks.thread.is_alive()


def test_a_fault_of_ours_in_a_batch_refuses_only_the_message_that_meets_it(
    live: ChatSession, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault that is not the database's must not stop the thread that stores every
    message of the process: the batch is tried one message at a time, and only the message
    that meets the fault is refused (a ``ChatError``: not to be sent again)."""
    real = writer.messages_send

    def fails_on_poison(*, requests: list[services.SendRequest]) -> list[Any]:
        if any(r.body == "poison" for r in requests):
            raise RuntimeError("I am worried about my urges")  # a text the log must not show
        return real(requests=requests)

    monkeypatch.setattr(writer, "messages_send", fails_on_poison)
    monkeypatch.setattr(writer, "gathering_time", lambda last: 0.05)  # gather all three
    store = writer.MessageWriter()

    async def send_three() -> list[object]:
        sends = [
            store.store(session_id=live.pk, sender="participant", client_id=cid, body=body)
            for cid, body in (
                ("c-fault-0001", "Hello"),
                ("c-fault-0002", "poison"),
                ("c-fault-0003", "Hello again"),
            )
        ]
        return await asyncio.wait_for(asyncio.gather(*sends, return_exceptions=True), 10)

    first, poison, third = asyncio.run(send_three())
    assert (first.seq, third.seq) == (1, 2)  # type: ignore[union-attr]
    assert type(poison) is services.ChatError
    assert store.thread.is_alive()
    store.jobs.put(None)
    store.thread.join(timeout=10)
    assert "RuntimeError at " in caplog.text and "urges" not in caplog.text


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's write-ahead log")
def test_on_sqlite_a_thread_beside_the_writer_checkpoints_the_log(
    live: ChatSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's commits never checkpoint (that held up the messages behind them); the
    checkpoint thread copies what the writer wrote, and once more at shutdown."""
    monkeypatch.setattr(writer, "CHECKPOINT_SECONDS", 0.05)
    done: list[tuple[str, tuple[int, int, int] | None]] = []
    real = writer.Checkpointer.checkpoint

    def checkpoint(self: writer.Checkpointer) -> tuple[int, int, int] | None:
        status = real(self)
        done.append((threading.current_thread().name, status))
        return status

    monkeypatch.setattr(writer.Checkpointer, "checkpoint", checkpoint)
    messages = writer.MessageWriter()

    async def send() -> None:
        for n in range(20):
            await messages.store(
                session_id=live.pk, sender="therapist", client_id=f"c-log-{n:04d}", body="Hello"
            )

    asyncio.run(send())
    own = messages.raw.execute("PRAGMA wal_autocheckpoint").fetchone()  # type: ignore[attr-defined]
    time.sleep(0.3)
    messages.jobs.put(None)
    messages.thread.join(timeout=10)
    assert own == (0,)
    assert messages.checkpointer is not None and not messages.checkpointer.thread.is_alive()
    assert {name for name, _ in done} == {"chat-checkpoint"}
    statuses = [status for _, status in done if status is not None]
    # A checkpoint that meets a commit of the writer's copies only up to the writer's snapshot
    # (PASSIVE: it waits for nobody), so only the last one, at shutdown, must copy the whole log.
    assert all(busy == 0 and copied <= frames for busy, frames, copied in statuses)
    assert statuses and statuses[-1][1] > 0 and statuses[-1][1] == statuses[-1][2]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's write-ahead log")
def test_a_failing_checkpoint_is_logged_and_retried_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(sql: str) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    broken = SimpleNamespace(
        ensure_connection=lambda: None,
        connection=SimpleNamespace(execute=refuse),
        wrap_database_errors=connection.wrap_database_errors,
        close=lambda: None,
    )
    monkeypatch.setattr(writer, "db_connection", broken)
    monkeypatch.setattr(writer, "CHECKPOINT_SECONDS", 0.01)
    checkpointer = writer.Checkpointer()
    time.sleep(0.1)
    assert checkpointer.thread.is_alive()  # still there for the next second
    assert checkpointer.checkpoint() is None
    checkpointer.stop()
    assert not checkpointer.thread.is_alive()
    assert "chat checkpoint: the database refused" in caplog.text


class RecordingWriter(writer.MessageWriter):
    """Records which messages each commit stored; the first commit waits for ``release``."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.holding = threading.Event()  # the first commit has begun
        super().__init__()

    def commit(self, batch: list[writer.SendJob]) -> None:
        if not self.batches:
            self.holding.set()
            self.release.wait(timeout=5)
        self.batches.append([job.client_id for job in batch])
        answers: list[tuple[writer.SendJob, object]] = [
            (job, services.StoredMessage(n, job.sender, job.client_id, None, True, ""))
            for n, job in enumerate(batch, start=1)
        ]
        batch[0].future.get_loop().call_soon_threadsafe(writer._settle, answers)


def stores_in_batches() -> list[list[str]]:
    """One message alone, then two that come together, then two 50 ms apart."""

    async def store(to: writer.MessageWriter, client_id: str) -> services.StoredMessage:
        return await to.store(session_id=1, sender="participant", client_id=client_id, body="hi")

    async def scenario() -> list[list[str]]:
        recording = RecordingWriter()
        blocker = asyncio.create_task(store(recording, "blocker"))
        assert await asyncio.to_thread(recording.holding.wait, 5)  # "blocker" is held alone
        pair = [asyncio.create_task(store(recording, name)) for name in ("a", "b")]
        await asyncio.sleep(0.05)
        recording.release.set()
        await asyncio.gather(blocker, *pair)  # "a" and "b" came together: company
        late = asyncio.create_task(store(recording, "c"))
        await asyncio.sleep(0.05)
        await asyncio.gather(late, store(recording, "d"))
        recording.jobs.put(None)
        await asyncio.to_thread(recording.thread.join, 5)
        return recording.batches

    return asyncio.run(scenario())


def test_after_a_batch_with_company_the_writer_lets_the_next_batch_gather(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CHAT_WRITER_GATHER_SECONDS = 0.5
    monkeypatch.setattr(writer, "GATHER_PER_MESSAGE", 0.5)
    assert stores_in_batches() == [["blocker"], ["a", "b"], ["c", "d"]]


def test_without_a_gathering_time_each_message_is_stored_as_it_comes(settings: Any) -> None:
    settings.CHAT_WRITER_GATHER_SECONDS = 0
    assert stores_in_batches() == [["blocker"], ["a", "b"], ["c"], ["d"]]


def test_the_gathering_time_grows_with_the_last_batch_up_to_the_setting(settings: Any) -> None:
    settings.CHAT_WRITER_GATHER_SECONDS = 0.008
    step = writer.GATHER_PER_MESSAGE
    waits = [writer.gathering_time(last) for last in (0, 1, 2, 3, 1000)]
    assert waits == pytest.approx([0, 0, step, 2 * step, 0.008])


# --- the scaled path's faults, found by a review helper (2026-12-01) --------------------------


def hanging_writer(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, threading.Event]:
    """A writer whose database does not answer until the event is set."""
    release = threading.Event()
    real = writer.messages_send

    def hangs(*, requests: list[services.SendRequest]) -> list[Any]:
        release.wait(10)
        return real(requests=requests)

    monkeypatch.setattr(writer, "messages_send", hangs)
    return writer.MessageWriter(), release


def test_a_send_the_database_does_not_answer_in_time_gets_unavailable(
    live: ChatSession, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """A database that hangs (a frozen server, a cut nobody reported) left the sender with
    neither an ack nor an error, and its connection with it."""
    from stopcsam.chat.exceptions import StorageUnavailableError

    settings.CHAT_STORE_TIMEOUT_SECONDS = 0.3
    store, release = hanging_writer(monkeypatch)

    async def send() -> Any:
        return await store.store(
            session_id=live.pk, sender="participant", client_id="c-hang-0001", body="Hello"
        )

    started = time.monotonic()
    with pytest.raises(StorageUnavailableError):
        asyncio.run(send())
    assert time.monotonic() - started < 3
    release.set()  # stored after all: the resend with the same client id will find it
    store.jobs.put(None)
    store.thread.join(timeout=10)
    assert live.messages.filter(client_id="c-hang-0001").count() == 1


@pytest.mark.parametrize("fault", ["OperationalError", "IntegrityError"])
def test_a_batch_the_database_refused_once_is_stored_on_a_fresh_connection(
    fault: str, live: ChatSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection the server dropped while idle failed the first batch after it; a clash
    with another process committing the same client id failed every sender of the batch."""
    import django.db

    real = writer.messages_send
    calls: list[int] = []

    def once(*, requests: list[services.SendRequest]) -> list[Any]:
        calls.append(len(requests))
        if len(calls) == 1:
            raise getattr(django.db, fault)("the server closed the connection")
        return real(requests=requests)

    monkeypatch.setattr(writer, "messages_send", once)
    store = writer.MessageWriter()

    async def send() -> Any:
        return await store.store(
            session_id=live.pk, sender="participant", client_id="c-again-0001", body="Hello"
        )

    try:
        stored = asyncio.run(send())
    finally:
        store.jobs.put(None)
        store.thread.join(timeout=10)
    assert (stored.seq, calls) == (1, [1, 1])
    assert live.messages.count() == 1


def test_a_fault_after_the_store_leaves_the_stored_messages_stored_and_woken(
    live: ChatSession, book: Any, participant: Any, therapist: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the batch has committed when the reason for a refused message is looked
    up: a fault there turned every sender's stored message into an error, with no wake-up."""
    from unittest import mock

    from django.db import OperationalError

    from stopcsam.chat.exceptions import SessionNotLiveError

    scheduled = book(participant.participant, therapist.user)

    def down(session_id: int) -> str:
        raise OperationalError("the connection dropped")

    monkeypatch.setattr(services, "_session_state", down)
    hub = mock.Mock()
    with mock.patch.object(services, "get_hub", return_value=hub):
        stored, refused = services.messages_send(
            requests=[
                services.SendRequest(live.pk, "participant", "c-after-0001", "Hello"),
                services.SendRequest(scheduled.pk, "participant", "c-after-0002", "Hello"),
            ]
        )
    assert isinstance(stored, services.StoredMessage) and stored.seq == 1
    assert isinstance(refused, SessionNotLiveError)
    (events,) = hub.publish_many.call_args.args
    assert [session_id for session_id, _ in events] == [live.pk]


def test_while_the_writer_is_held_up_past_the_timeout_a_send_is_answered_at_once(
    live: ChatSession, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """A connection answers its client's frames in turn: with a hung database, eight sends
    in flight were answered after 10, 20 ... 80 s (a review finding)."""
    from stopcsam.chat.exceptions import StorageUnavailableError

    settings.CHAT_STORE_TIMEOUT_SECONDS = 0.3
    store, release = hanging_writer(monkeypatch)

    async def send(cid: str) -> Any:
        return await store.store(session_id=live.pk, sender="participant", client_id=cid, body="Hi")

    with pytest.raises(StorageUnavailableError):
        asyncio.run(send("c-stuck-0001"))  # waits its 0.3 s
    # The writer took the message (``busy_since``) a moment after its sender's timer started:
    # wait until, by the writer's own clock, it has been held up for longer than the timeout.
    eventually(
        lambda: (
            (busy := store.busy_since) is not None
            and time.monotonic() - busy > settings.CHAT_STORE_TIMEOUT_SECONDS
        )
    )
    started = time.monotonic()
    with pytest.raises(StorageUnavailableError):
        asyncio.run(send("c-stuck-0002"))
    assert time.monotonic() - started < 0.2  # at once
    release.set()
    store.jobs.put(None)
    store.thread.join(timeout=10)
    assert store.busy_since is None
    assert list(live.messages.values_list("client_id", flat=True)) == ["c-stuck-0001"]


def test_while_a_read_marker_flush_is_held_up_past_the_timeout_a_send_is_answered_at_once(
    live: ChatSession, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """The writer stores the read markers too, and a flush the database does not answer (on
    PostgreSQL it locks the session rows, which a transaction elsewhere may hold) held up the
    messages behind it just as a hung batch does: but only a batch of messages counted as
    held up, so each send waited out its own timeout, one after the other on a connection."""
    from stopcsam.chat.exceptions import StorageUnavailableError

    settings.CHAT_STORE_TIMEOUT_SECONDS = 0.3
    release, flushing = threading.Event(), threading.Event()

    def hangs(*, marks: list[services.ReadMark]) -> None:
        flushing.set()
        release.wait(10)

    monkeypatch.setattr(writer, "read_marks", hangs)
    store = writer.MessageWriter()
    store.mark_read(services.ReadMark(live.pk, "participant", 1))
    assert flushing.wait(5)
    time.sleep(settings.CHAT_STORE_TIMEOUT_SECONDS + 0.1)  # held up for longer than a send waits

    async def send() -> Any:
        return await store.store(
            session_id=live.pk, sender="participant", client_id="c-behind-0001", body="Hi"
        )

    started = time.monotonic()
    with pytest.raises(StorageUnavailableError):
        asyncio.run(send())
    assert time.monotonic() - started < 0.2  # at once
    release.set()
    store.jobs.put(None)
    store.thread.join(timeout=10)
    assert store.busy_since is None
