from __future__ import annotations

import asyncio
import threading

from django.test import override_settings

from stopcsam.chat.services import StoredMessage
from stopcsam.chat.writer import MessageWriter, SendJob, _settle


class RecordingWriter(MessageWriter):
    """Records which messages each commit stored; the first commit waits for ``release``."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        super().__init__()

    def commit(self, batch: list[SendJob]) -> None:
        if not self.batches:
            self.release.wait(timeout=5)
        self.batches.append([job.client_id for job in batch])
        answers: list[tuple[SendJob, object]] = [
            (job, StoredMessage(n, job.sender, job.client_id, None, True, ""))
            for n, job in enumerate(batch, start=1)
        ]
        batch[0].future.get_loop().call_soon_threadsafe(_settle, answers)


async def store(writer: MessageWriter, client_id: str) -> StoredMessage:
    return await writer.store(session_id=1, sender="participant", client_id=client_id, body="hi")


def stores_in_batches(gather_seconds: float) -> list[list[str]]:
    async def scenario() -> list[list[str]]:
        writer = RecordingWriter()
        blocker = asyncio.create_task(store(writer, "blocker"))
        await asyncio.sleep(0.05)  # the writer holds "blocker" in its first commit
        pair = [asyncio.create_task(store(writer, name)) for name in ("a", "b")]
        await asyncio.sleep(0.05)
        writer.release.set()
        await asyncio.gather(blocker, *pair)  # "a" and "b" came together: company
        late = asyncio.create_task(store(writer, "c"))
        await asyncio.sleep(0.05)
        await asyncio.gather(late, store(writer, "d"))
        writer.jobs.put(None)
        await asyncio.to_thread(writer.thread.join, 5)
        return writer.batches

    with override_settings(CHAT_WRITER_GATHER_SECONDS=gather_seconds):
        return asyncio.run(scenario())


def test_under_load_the_writer_lets_a_batch_gather() -> None:
    assert stores_in_batches(0.5) == [["blocker"], ["a", "b"], ["c", "d"]]


def test_without_a_gathering_time_each_message_is_stored_as_it_comes() -> None:
    assert stores_in_batches(0) == [["blocker"], ["a", "b"], ["c"], ["d"]]
