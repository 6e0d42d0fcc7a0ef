from __future__ import annotations

import time

import pytest

from stopcsam.chat import services, writer
from stopcsam.chat.models import ChatSession

pytestmark = pytest.mark.django_db(transaction=True)


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
    time.sleep(writer.READ_MARK_DELAY * 3)
    assert stored == [[("participant", 3), ("therapist", 2)]]  # the highest of each side
    marks.mark_read(services.ReadMark(live.pk, "therapist", 3))
    marks.jobs.put(None)
    marks.thread.join(timeout=10)
    assert stored[1:] == [[("therapist", 3)]]
    live.refresh_from_db()
    assert (live.participant_read_seq, live.therapist_read_seq) == (3, 3)


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
