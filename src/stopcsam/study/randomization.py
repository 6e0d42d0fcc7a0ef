"""Stratified permuted blocks with randomly varying block sizes, from a sealed seed.

The random stream is HMAC-SHA256(seed, "<stratum>|<block>|<counter>"), a deterministic CSPRNG:
anyone holding the seed can recompute every allocation (``stopcsam study_verify``), nobody
without it can predict the next one. Block ``b`` of a stratum draws its size multiplier and
then shuffles its arms (Fisher-Yates, unbiased by rejection sampling).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from functools import lru_cache

SEED_BYTES = 32


def new_seed() -> str:
    return secrets.token_hex(SEED_BYTES)


def is_seed(text: str) -> bool:
    """A seed as ``new_seed`` makes it: SEED_BYTES bytes written as lowercase hex."""
    return len(text) == 2 * SEED_BYTES and all(c in "0123456789abcdef" for c in text)


def seed_commitment(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


class _Stream:
    """An endless stream of random integers for one block of one stratum."""

    def __init__(self, seed: str, stratum: str, block: int) -> None:
        self._key = bytes.fromhex(seed)
        self._label = f"{stratum}|{block}"
        self._counter = 0

    def _word(self) -> int:
        message = f"{self._label}|{self._counter}".encode()
        self._counter += 1
        return int.from_bytes(hmac.new(self._key, message, hashlib.sha256).digest()[:8], "big")

    def below(self, bound: int) -> int:
        """A uniform integer in [0, bound), by rejection so no value is favoured."""
        limit = (1 << 64) - ((1 << 64) % bound)
        while True:
            word = self._word()
            if word < limit:
                return word % bound


def block(
    seed: str, stratum: str, index: int, base: tuple[str, ...], multipliers: tuple[int, ...]
) -> list[str]:
    stream = _Stream(seed, stratum, index)
    arms = list(base) * multipliers[stream.below(len(multipliers))]
    for i in range(len(arms) - 1, 0, -1):
        j = stream.below(i + 1)
        arms[i], arms[j] = arms[j], arms[i]
    return arms


def sequence(
    seed: str, stratum: str, base: tuple[str, ...], multipliers: tuple[int, ...]
) -> Iterator[list[str]]:
    index = 0
    while True:
        yield block(seed, stratum, index, base, multipliers)
        index += 1


@lru_cache(maxsize=4096)
def arm_at(
    seed: str, stratum: str, position: int, base: tuple[str, ...], multipliers: tuple[int, ...]
) -> str:
    """The arm of the allocation at ``position`` (0-based) in a stratum's sequence."""
    for arms in sequence(seed, stratum, base, multipliers):
        if position < len(arms):
            return arms[position]
        position -= len(arms)
    raise AssertionError("unreachable")  # pragma: no cover


def allocations(
    seed: str, stratum: str, count: int, base: tuple[str, ...], multipliers: tuple[int, ...]
) -> list[str]:
    """The first ``count`` allocations of a stratum (for verification and tests)."""
    result: list[str] = []
    for arms in sequence(seed, stratum, base, multipliers):
        result.extend(arms)
        if len(result) >= count:
            return result[:count]
    raise AssertionError("unreachable")  # pragma: no cover
