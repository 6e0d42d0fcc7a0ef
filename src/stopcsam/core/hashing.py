"""A limit on the slow hashes a stranger can make the server compute.

Argon2 is slow and memory-hard on purpose: 26 ms and 19 MiB for a codename, and for a staff
password (Django's defaults) about 100 ms and 100 MiB. Sign-up, a participant's login, and a
staff login (even for an unknown username, which is hashed so that it takes as long as a
known one) each cost one, and none can be throttled per client: behind an onion service every
client has the same address. Unlimited, a flood of sign-ups would take every core, and live
chat sessions with them. So each process computes at most SLOW_HASHES_AT_ONCE of them at a
time, and at most MAX_WAITING requests wait for a turn, each for up to SLOW_HASH_WAIT_SECONDS;
any other is answered "busy, try again shortly" at once (503, ``core.middleware.BusyMiddleware``).
Waiting requests hold HTTP threads (8 per process), which every page needs, the chat's form
without JavaScript too: unbounded, a trickle of sign-ups faster than one turn takes would have
held them all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


class HashingBusyError(Exception):
    """No turn to compute a slow hash: too many waiting, or none within
    SLOW_HASH_WAIT_SECONDS."""


MAX_WAITING = 2  # requests per process that wait for a turn; any more are busy at once


class _Turns:
    def __init__(self, count: int) -> None:
        self.semaphore = threading.BoundedSemaphore(count)
        self.waiting = 0
        self.lock = threading.Lock()

    def take(self) -> threading.BoundedSemaphore:
        if self.semaphore.acquire(blocking=False):
            return self.semaphore
        with self.lock:
            if self.waiting >= MAX_WAITING:
                raise HashingBusyError
            self.waiting += 1
        try:
            taken = self.semaphore.acquire(timeout=settings.SLOW_HASH_WAIT_SECONDS)
        finally:
            with self.lock:
                self.waiting -= 1
        if not taken:
            raise HashingBusyError
        return self.semaphore


_turns: dict[int, _Turns] = {}
_turns_lock = threading.Lock()


def _process_turns() -> _Turns:
    count = settings.SLOW_HASHES_AT_ONCE
    found = _turns.get(count)
    if found is None:
        with _turns_lock:
            found = _turns.setdefault(count, _Turns(count))
    return found


_held = threading.local()  # the turn this thread holds, if any


@contextmanager
def slow_hash_turn() -> Iterator[None]:
    """Wait for this process's turn to compute a slow hash; ``HashingBusyError`` after
    SLOW_HASH_WAIT_SECONDS, or at once when MAX_WAITING wait already. A thread that holds a
    turn already keeps it: a staff login takes its turn before its attempt is counted, so
    that a busy answer counts no failure, and then checks the password in the same turn."""
    if getattr(_held, "semaphore", None) is not None:
        yield
        return
    semaphore = _process_turns().take()
    _held.semaphore = semaphore
    try:
        yield
    finally:
        _held.semaphore = None
        semaphore.release()


class LimitedArgon2PasswordHasher(Argon2PasswordHasher):
    """Django's argon2 hasher (same algorithm name, so stored hashes still verify), each
    hash computed in its turn (``slow_hash_turn``)."""

    def encode(self, password: str, salt: str) -> str:
        with slow_hash_turn():
            return super().encode(password, salt)

    def verify(self, password: str, encoded: str) -> bool:
        with slow_hash_turn():
            return super().verify(password, encoded)
