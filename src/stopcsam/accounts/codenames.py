"""Codenames: server-generated words that are a participant's only credential.

Words come from a list in the participant's language (``wordlists/<lang>.txt``). Enough words
are drawn with ``secrets`` to reach ``CODENAME_MIN_ENTROPY_BITS``. What the participant types
is normalised (case, spacing, diacritics, separators) before it is hashed, so "Lípa  MOST"
and "lipa most" are the same codename.
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
