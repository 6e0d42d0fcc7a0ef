"""Row locks under real concurrency (PostgreSQL; SQLite serialises every writer anyway).

A participant's withdrawal cancels their sessions while staff or the participant change the
same course in another request. Each test holds one side inside its transaction, lets the
other run into its locks, then lets the first go on: nothing may fail and nothing may be
cancelled twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, connections

from stopcsam.core.signals import session_outcome
from stopcsam.scheduling import services
from stopcsam.scheduling.exceptions import NotChangeableError
from stopcsam.scheduling.models import Course, Status
from stopcsam.scheduling.services import Actor
from stopcsam.scheduling.tests.conftest import TUESDAY_EVENING, FrozenClock, book_course

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="runs when DATABASE_URL is set"),
]

FIRST = datetime(2026, 3, 17, 16, 0, tzinfo=UTC)
HOLD = 1.5  # longer than PostgreSQL's deadlock_timeout (1 s): a deadlock would be found


@pytest.fixture
def course(frozen: FrozenClock, participant, therapist, bookable) -> Course:  # type: ignore[no-untyped-def]
    bookable(therapist.user, TUESDAY_EVENING)
    return book_course(participant.participant, FIRST)


@pytest.fixture
def outcomes() -> Iterator[list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []

    def receiver(sender: object, **kwargs: Any) -> None:
        seen.append((str(kwargs["appointment_ref"]), str(kwargs["outcome"])))

    session_outcome.connect(receiver, weak=False)
    yield seen
    session_outcome.disconnect(receiver)


def _held_in(
    monkeypatch: pytest.MonkeyPatch, name: str, held: threading.Event
) -> Callable[..., Any]:
    """Wrap services.<name> so that, in the thread called "first", it says it got there and
    then waits (its transaction open, its locks held) before going on."""
    real = getattr(services, name)

    def holding(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "first" and not held.is_set():
            held.set()
            time.sleep(HOLD)
        return real(*args, **kwargs)

    monkeypatch.setattr(services, name, holding)
    return holding


def _race(
    first: Callable[[], object], second: Callable[[], object], held: threading.Event
) -> list[Exception]:
    """Run ``first``; once it holds its locks, ``second``. The faults either raised."""
    faults: list[Exception] = []

    def run(job: Callable[[], object], wait: threading.Event | None) -> None:
        if wait is not None:
            wait.wait(10)
            time.sleep(0.2)  # ``first`` is inside its transaction now
        try:
            job()
        except Exception as fault:
            faults.append(fault)
        finally:
            held.set()
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(first, None), name="first"),
        threading.Thread(target=run, args=(second, held), name="second"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return faults


def _withdrawal(course: Course) -> Callable[[], object]:
    return lambda: services.appointments_cancel_on_withdrawal(participant_id=course.participant_id)


def _each_once(course: Course, outcomes: list[tuple[str, str]]) -> None:
    refs = list(course.appointments.values_list("ref", flat=True))
    assert sorted(outcomes) == sorted((ref, "cancelled") for ref in refs)
    assert set(course.appointments.values_list("status", flat=True)) == {Status.CANCELLED}
    course.refresh_from_db()
    assert course.ended_at is not None


@pytest.mark.parametrize("which", [0, 1])
def test_cancelling_the_rest_while_the_participant_withdraws_cancels_each_once(
    which: int, course: Course, outcomes: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "This session and all later ones" (the first, or the second) in one request, the
    participant's withdrawal in another: every session is cancelled, and the study hears
    "cancelled" once for each. Both lock the course, then its sessions by start (the
    withdrawal taking the course first and the cancellation last deadlocked)."""
    held = threading.Event()
    _held_in(monkeypatch, "_mark_cancelled", held)
    chosen = list(course.appointments.order_by("start"))[which]
    cancel = lambda: services.appointment_cancel(  # noqa: E731
        appointment=chosen, actor=Actor.participant(), rest=True
    )
    assert _race(cancel, _withdrawal(course), held) == []
    _each_once(course, outcomes)


def test_a_withdrawal_waits_for_a_cancellation_it_cannot_repeat(
    course: Course, outcomes: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other way round: the withdrawal holds the sessions, and "cancel the rest" sent
    meanwhile is refused as no longer changeable, once it sees them cancelled."""
    held = threading.Event()
    _held_in(monkeypatch, "_mark_cancelled", held)
    second = list(course.appointments.order_by("start"))[1]
    cancel = lambda: services.appointment_cancel(  # noqa: E731
        appointment=second, actor=Actor.participant(), rest=True
    )
    faults = _race(_withdrawal(course), cancel, held)
    assert [type(f) for f in faults] == [NotChangeableError]
    _each_once(course, outcomes)


def test_a_hand_over_and_a_withdrawal_at_once_do_not_deadlock(
    course: Course,
    outcomes: list[tuple[str, str]],
    therapist,
    therapist_es,
    bookable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    """The hand-over holds the course and then moves its sessions; the withdrawal locked
    the first session and then waited for the course: each waited for the other, and
    PostgreSQL ended one with "deadlock detected" (a 500)."""
    bookable(therapist_es.user, [], tz="Europe/Madrid")
    held = threading.Event()
    _held_in(monkeypatch, "_check_handover_allowed", held)
    hand_over = lambda: services.course_hand_over(  # noqa: E731
        course=course, to_therapist=therapist_es.user, actor=Actor.of_staff(therapist.user)
    )
    assert _race(hand_over, _withdrawal(course), held) == []
    course.refresh_from_db()
    assert course.therapist_id == therapist_es.user.pk
    _each_once(course, outcomes)
