"""One writer thread per process that stores socket messages with group commit.

Messages that arrive together are stored in one transaction (each in its own savepoint, so
one refused message does not sink the others); every sender is answered only after that
transaction has committed. Read markers are held for a tenth of a second and stored
together; nobody waits for those. One writer also suits SQLite, which has one writer at a time.
Database reads for sockets run on a small separate pool. Both keep their connection open
(opening one per message would cost more than the message) and reopen it after an error.
On SQLite a third thread checkpoints the write-ahead log, so that the writer's commits never do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, DataError, connections
from django.db import connection as db_connection

from stopcsam.chat.exceptions import ChatError, StorageUnavailableError, fault_summary
from stopcsam.chat.services import (
    ReadMark,
    SendRequest,
    StoredMessage,
    messages_send,
    read_marks,
)

logger = logging.getLogger("stopcsam.chat.writer")
MAX_BATCH = 100
# Read markers wait this long to be stored together: each side's markers are then one
# statement and one commit for several batches of messages. A statement per batch cost
# PostgreSQL a second commit (and fsync) per batch: p99 at 2,000 scaled sessions 67 ms, 26 ms
# held (bench/chat.py). Held 0.25 s, a flush took 8 ms on SQLite, and messages waited
# behind it. The other side sees the marker that much later.
READ_MARK_DELAY = 0.1
# On SQLite the writer never checkpoints the write-ahead log itself: a checkpoint (copying the
# log's pages into the database file) ran in whichever commit crossed 1,000 pages, which was
# a writer's batch several times a second, and each one held up the messages behind it: p99
# at 100 sessions 11-18 ms with it, 6-8 ms without (bench/chat.py). A thread of its own does
# it in the background (PASSIVE: it never blocks the writer), this often.
CHECKPOINT_SECONDS = 1.0
# See gathering_time. 1 ms left the batches of each of the 2 scaled processes small at 1,000
# sessions (500 messages a second each): 594+288 us of CPU per message (server + PostgreSQL
# and Redis) against 433+201 with 2 ms; embedded 266 against 218 (bench/chat.py, 15 s).
GATHER_PER_MESSAGE = 0.002


@dataclass
class SendJob:
    session_id: int
    sender: str
    client_id: str
    body: object
    future: asyncio.Future[StoredMessage]


MARKS = "marks"  # a job that only wakes the writer for the read markers left beside the queue


class MessageWriter:
    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[SendJob | str | None] = queue.SimpleQueue()
        # Read markers wait beside the queue, the highest of each side of a session; only the
        # first of each flush wakes the writer (``marks_told``).
        self.marks: dict[tuple[int, str], ReadMark] = {}
        self.marks_told = False
        self.marks_lock = threading.Lock()
        self.raw: object = None  # the sqlite3 connection whose own checkpoints are off
        self.busy_since: float | None = None  # when the batch being stored began
        self.checkpointer = Checkpointer() if db_connection.vendor == "sqlite" else None
        self.thread = threading.Thread(target=self.run, name="chat-writer", daemon=True)
        self.thread.start()

    async def store(
        self, *, session_id: int, sender: str, client_id: str, body: object
    ) -> StoredMessage:
        """Queue a message for the next group commit; the answer comes once it is stored, or
        ``StorageUnavailableError`` after CHAT_STORE_TIMEOUT_SECONDS: a database that hung
        (a frozen server, a cut the network did not report) left the sender unanswered for
        good (a review finding). The message may still be stored later: the client's resend
        with the same client id then finds it."""
        stuck = self.busy_since
        if stuck is not None and time.monotonic() - stuck > settings.CHAT_STORE_TIMEOUT_SECONDS:
            # The writer has been held up by the database for longer than a sender waits:
            # this one is answered at once, not after its own wait (a connection answers its
            # client's frames in turn, so eight of them waited 10, 20 ... 80 s; a review
            # finding).
            raise StorageUnavailableError
        loop = asyncio.get_running_loop()
        future: asyncio.Future[StoredMessage] = loop.create_future()
        self.jobs.put(SendJob(session_id, sender, client_id, body, future))
        # A timer, not asyncio.wait_for, which would be a task more per message: setting and
        # cancelling it costs 1.5-2.1 us on uvloop (under 1% of a message's CPU time).
        timer = loop.call_later(settings.CHAT_STORE_TIMEOUT_SECONDS, _too_late, future)
        try:
            return await future
        finally:
            timer.cancel()

    def mark_read(self, mark: ReadMark) -> None:
        """Leave a read marker for the writer's next flush. A browser marks every message it
        shows as read: through the thread pool, a transaction each, markers overloaded the
        server at 2,000 sessions (bench/chat.py: p99 12.9 s). Queued one by one, each woke
        the idle writer thread: at 100 sessions a wake-up per message for a marker that then
        waited 0.1 s anyway."""
        key = (mark.session_id, mark.sender)
        with self.marks_lock:
            if key not in self.marks or self.marks[key].seq < mark.seq:  # only forward
                self.marks[key] = mark
            wake, self.marks_told = not self.marks_told, True
        if wake:
            self.jobs.put(MARKS)

    def take_marks(self) -> list[ReadMark]:
        """The markers left beside the queue, for a flush; the next marker wakes the writer
        again."""
        with self.marks_lock:
            marks, self.marks = self.marks, {}
            self.marks_told = False
        return list(marks.values())

    def run(self) -> None:
        last = 0  # messages in the last batch
        due: float | None = None  # when the markers beside the queue are stored
        while True:
            try:
                first = self.jobs.get(
                    timeout=None if due is None else max(0.0, due - time.monotonic())
                )
            except queue.Empty:
                self.mark(self.take_marks())
                due = None
                continue
            if first is None:  # shut down: leave no database connection behind
                self.mark(self.take_marks())
                connections.close_all()
                if self.checkpointer is not None:
                    self.checkpointer.stop()
                return
            gather = gathering_time(last)
            if gather:
                time.sleep(gather)
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self.jobs.put(None)
                    break
                batch.append(job)
            sends = [job for job in batch if isinstance(job, SendJob)]
            last = len(sends)
            self.leave_checkpoints()
            if sends:
                self.busy_since = time.monotonic()
                try:
                    self.commit(sends)
                finally:
                    self.busy_since = None
            if due is None and len(sends) < len(batch):  # the first marker of a flush came
                due = time.monotonic() + READ_MARK_DELAY
            if due is not None and time.monotonic() >= due:
                self.mark(self.take_marks())
                due = None

    def leave_checkpoints(self) -> None:
        """Turn off the writer's own checkpoints on each connection it opens (SQLite)."""
        if self.checkpointer is None:
            return
        try:
            db_connection.ensure_connection()
            if db_connection.connection is not self.raw:
                with db_connection.wrap_database_errors:
                    db_connection.connection.execute("PRAGMA wal_autocheckpoint=0")
                self.raw = db_connection.connection
        except DatabaseError:
            db_connection.close()  # the batch meets the same fault and answers for it

    def mark(self, marks: list[ReadMark]) -> None:
        if not marks:
            return
        # A flush the database does not answer holds up the messages queued behind it as a
        # hung batch does (on PostgreSQL it waits for the session rows' locks): counted, so
        # that their senders are answered at once, not each after its own timeout in turn
        # (a review finding).
        self.busy_since = time.monotonic()
        try:
            read_marks(marks=marks)
        except DatabaseError:
            # A marker is a courtesy: the next one the browser sends carries this one too.
            logger.warning("chat writer: the database refused read markers; they are dropped")
            db_connection.close()
        except Exception as fault:  # never let a marker stop the thread that stores messages
            logger.error("chat writer: %s; read markers dropped", fault_summary(fault))
        finally:
            self.busy_since = None

    def stored(self, requests: list[SendRequest]) -> list[StoredMessage | ChatError]:
        """The batch's answers. A batch the database refused goes once more, on a fresh
        connection: a connection the server dropped while it sat idle (a restart, a timeout)
        failed the first batch after it, and a message that another process was committing
        under the same client id (a unique key clash) or a deadlock failed every sender of the
        batch (review findings). The batch is idempotent by client id: storing it again never
        stores a message twice."""
        for attempt in (1, 2):
            try:
                return list(messages_send(requests=requests))
            except DataError:
                # One message the database refuses (a value it cannot hold) must not sink
                # the others of the batch, in other sessions (a review finding): each alone.
                logger.warning("chat writer: the database refused a value; each is tried alone")
                db_connection.close()
                return [_alone(request) for request in requests]
            except DatabaseError as fault:
                db_connection.close()
                # Another process held SQLite's lock for its whole busy timeout (20 s):
                # waiting that long once more would hold up every other session's messages.
                locked = db_connection.vendor == "sqlite" and "locked" in str(fault)
                if attempt == 2 or locked:
                    logger.warning("chat writer: the database refused a batch; senders are told")
                    return [StorageUnavailableError() for _ in requests]
                self.leave_checkpoints()  # the fresh connection's own checkpoints off (SQLite)
            except Exception as fault:  # a fault of ours: it must not stop the thread
                logger.error("chat writer: %s; each message is tried alone", fault_summary(fault))
                db_connection.close()
                return [_alone(request) for request in requests]
        raise AssertionError("unreachable: the second attempt always returns")

    def commit(self, batch: list[SendJob]) -> None:
        requests = [SendRequest(j.session_id, j.sender, j.client_id, j.body) for j in batch]
        results = self.stored(requests)
        # One hand-over per event loop and batch, not one per message (bench/chat.py).
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[SendJob, object]]] = {}
        for job, result in zip(batch, results, strict=True):
            by_loop.setdefault(job.future.get_loop(), []).append((job, result))
        for loop, answers in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
                loop.call_soon_threadsafe(_settle, answers)


def _too_late(future: asyncio.Future[StoredMessage]) -> None:
    if not future.done():
        future.set_exception(StorageUnavailableError())


def _alone(request: SendRequest) -> StoredMessage | ChatError:
    """One message of a batch that failed for a fault of ours, stored on its own: only the
    message that meets the fault is refused (and not to be sent again: ``ChatError``)."""
    try:
        (result,) = messages_send(requests=[request])
    except DatabaseError:
        db_connection.close()
        return StorageUnavailableError()
    except Exception as fault:
        logger.error("chat writer: %s storing a message; it is refused", fault_summary(fault))
        db_connection.close()
        return ChatError()
    return result


def gathering_time(last: int) -> float:
    """How long the writer lets a batch gather, after a batch of ``last`` messages:
    GATHER_PER_MESSAGE for each message that came along with the first, up to
    CHAT_WRITER_GATHER_MS. A batch's fixed cost (the transaction, the statements, the pages
    of the commit; on PostgreSQL a round trip and a commit) was most of a message's CPU time.
    Alone, a message is stored at once; under a steady load the wait grows while each wait
    gathers more messages than the one before, which takes about one message every
    GATHER_PER_MESSAGE. A fixed 3 ms cost 277-304 us of CPU per message at 1,000 embedded
    sessions, a fixed 8 ms 218-243 us, but p99 at 100 sessions rose from 2.4 to 7.6 ms, where
    the goal is 10 (bench/chat.py; docs/chat-protocol.md has the rest)."""
    return min(settings.CHAT_WRITER_GATHER_SECONDS, max(0, last - 1) * GATHER_PER_MESSAGE)


class Checkpointer:
    """Checkpoints SQLite's write-ahead log in the background for the writer."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="chat-checkpoint", daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopping.wait(CHECKPOINT_SECONDS):
            self.checkpoint()
        self.checkpoint()  # what the writer wrote last
        connections.close_all()

    def checkpoint(self) -> tuple[int, int, int] | None:
        """One PASSIVE checkpoint: (busy, frames in the log, frames copied), None on a fault."""
        try:
            db_connection.ensure_connection()
            with db_connection.wrap_database_errors:
                (status,) = db_connection.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            return tuple(status)
        except DatabaseError:
            logger.warning("chat checkpoint: the database refused; retrying")
            db_connection.close()
            return None

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)


def _settle(answers: list[tuple[SendJob, object]]) -> None:
    for job, result in answers:
        if job.future.done():  # the sender went away
            continue
        if isinstance(result, BaseException):
            job.future.set_exception(result)
        else:
            job.future.set_result(result)  # type: ignore[arg-type]


_writer: MessageWriter | None = None
_readers: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def get_writer() -> MessageWriter:
    global _writer
    if _writer is not None:  # once per message: no lock once it exists
        return _writer
    with _lock:
        if _writer is None:
            _writer = MessageWriter()
        return _writer


def get_readers() -> ThreadPoolExecutor:
    global _readers
    with _lock:
        if _readers is None:
            _readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="chat-read")
        return _readers


def shutdown() -> None:
    """Stop the writer and the readers and close their database connections (tests)."""
    global _writer, _readers
    with _lock:
        writer, readers, _writer, _readers = _writer, _readers, None, None
    if writer is not None:
        writer.jobs.put(None)
        writer.thread.join(timeout=10)
    if readers is not None:
        barrier = threading.Barrier(readers._max_workers, timeout=5)

        def close() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
            connections.close_all()

        for _ in range(readers._max_workers):
            readers.submit(close)
        readers.shutdown(wait=True)
