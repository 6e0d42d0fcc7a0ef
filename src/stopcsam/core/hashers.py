"""A cheaper argon2 for the test suite: same algorithm and format, lower cost, and the same
turns as production's (``core.hashing``)."""

from __future__ import annotations

from stopcsam.core.hashing import LimitedArgon2PasswordHasher


class TestArgon2PasswordHasher(LimitedArgon2PasswordHasher):
    time_cost = 1
    memory_cost = 1024
    parallelism = 1
