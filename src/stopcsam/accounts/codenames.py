"""Codenames: server-generated words that are a participant's only credential.

Words come from a list in the participant's language (``wordlists/<lang>.txt``). Enough words
are drawn with ``secrets`` to reach ``CODENAME_MIN_ENTROPY_BITS``. What the participant types
is normalised (case, spacing, diacritics, separators) before it is hashed, so "Lípa  MOST"
and "lipa most" are the same codename; typed without its spaces ("lipamost"), it is split
into listed words again at login (``readings``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import NewType

from django.conf import settings

from stopcsam.accounts.exceptions import CodenameTooLongError

Codename = NewType("Codename", str)
NormalisedCodename = NewType("NormalisedCodename", str)

WORDLIST_DIR = Path(__file__).resolve().parent / "wordlists"
_SEPARATORS = re.compile(r"[^a-z]+")


@lru_cache(maxsize=8)
def wordlist(language: str) -> tuple[str, ...]:
    path = WORDLIST_DIR / f"{language}.txt"
    words = path.read_text(encoding="utf-8").split()
    return tuple(words)


def words_needed(list_size: int, min_bits: float) -> int:
    return math.ceil(min_bits / math.log2(list_size))


def entropy_bits(language: str, word_count: int) -> float:
    return word_count * math.log2(len(wordlist(language)))


def codename_generate(language: str) -> Codename:
    words = wordlist(language)
    count = words_needed(len(words), settings.CODENAME_MIN_ENTROPY_BITS)
    return Codename(" ".join(secrets.choice(words) for _ in range(count)))


def normalise(raw: str) -> NormalisedCodename:
    """Fold case and diacritics, and treat any run of non-letters as one space."""
    if len(raw) > settings.CODENAME_MAX_LENGTH:
        raise CodenameTooLongError
    decomposed = unicodedata.normalize("NFKD", raw)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return NormalisedCodename(_SEPARATORS.sub(" ", stripped).strip())


def lookup_digest(normalised: NormalisedCodename) -> str:
    key = settings.STOPCSAM_LOOKUP_KEY.encode()
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()


# At most this many readings of a codename typed run together are looked up (see readings):
# a string made to split many ways gains a guesser two bits of the 80 a codename has.
MAX_READINGS = 4
MAX_WORDS = 12  # more than any list's codename has (words_needed), fewer than a crafted string


@lru_cache(maxsize=1)
def _known_words() -> tuple[frozenset[str], int]:
    """Every word of every list, as ``normalise`` leaves it, and the longest one's length:
    what a codename typed run together is split into (the login page does not know which
    language the codename was drawn in)."""
    words = {
        normalise(word)
        for path in sorted(WORDLIST_DIR.glob("??.txt"))
        for word in wordlist(path.stem)
    }
    words = {word for word in words if word and " " not in word}
    return frozenset(words), max(map(len, words))


def readings(normalised: NormalisedCodename) -> list[NormalisedCodename]:
    """The codename as typed, then the ways it splits into listed words with its spaces left
    out ("lipamost" as "lipa most"), longer words first, up to MAX_READINGS of those: the
    page says spaces do not matter, and a participant who typed the words together could not
    log in (a review finding). The lookup digest is of the spaced form, so existing accounts
    are found as they are."""
    joined = normalised.replace(" ", "")
    words, longest = _known_words()
    # ends[i]: where a listed word starting at i ends, for the positions from which the rest
    # splits to the end (computed backwards): the search below never meets a dead end, so
    # a string made to split many ways, or none, costs no more than it finds.
    ends: list[list[int]] = [[] for _ in range(len(joined) + 1)]
    whole = [False] * len(joined) + [True]
    for start in range(len(joined) - 1, -1, -1):
        for end in range(min(len(joined), start + longest), start, -1):
            if whole[end] and joined[start:end] in words:
                ends[start].append(end)
        whole[start] = bool(ends[start])
    found = [normalised]

    def split(start: int, taken: list[str]) -> None:
        if len(found) > MAX_READINGS or len(taken) > MAX_WORDS:
            return
        if start == len(joined):
            reading = NormalisedCodename(" ".join(taken))
            if reading not in found:
                found.append(reading)
            return
        for end in ends[start]:
            split(end, [*taken, joined[start:end]])

    if joined and whole[0]:
        split(0, [])
    return found
