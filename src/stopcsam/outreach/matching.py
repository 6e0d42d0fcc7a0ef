"""Normalising text and matching it against term lists with one Aho-Corasick automaton.

Terms and queries go through the same normalisation, so the comparison is exact afterwards:

1. Unicode compatibility decomposition, diacritics dropped, case folded (``Ü`` -> ``u``).
2. Common character substitutions (leetspeak) mapped to letters (``4`` -> ``a``).
3. Invisible format characters (soft hyphen, zero-width space) are dropped; every run of
   separators (anything not a letter or digit) becomes one space.
4. Runs of three or more single characters are joined (``p l a c e`` -> ``place``).
5. Repeated letters collapse to one (``plaaace`` -> ``place``).

Words and prefixes are searched in the spaced form, padded with one space at each end, so
word boundaries are part of the patterns: a *word* is `` term ``, a *prefix* `` term``.
Phrases are searched in the compact form (spaces removed, repeats collapsed again), so their
words match in order with any separators or none between them. Two automatons, one pass
each: the cost of a search depends on the length of the text, not on the number of terms.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ahocorasick  # ships no type information (mypy override)

MODES = ("word", "phrase", "prefix")

# Characters people put in place of letters. Letters never map to anything else.
DIGITS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}
# Symbols stand for letters only inside or at the start of a word ("p@ss", "$ign"); at the end
# of a word they are punctuation ("alpha!!").
SYMBOLS = {"@": "a", "$": "s", "!": "i", "|": "l", "€": "e", "+": "t"}
LEET = {**DIGITS, **SYMBOLS}
# Letters that Unicode does not decompose into a base letter and a mark.
SPECIAL_LETTERS = {
    "ß": "ss",
    "ø": "o",
    "đ": "d",
    "ł": "l",
    "æ": "ae",
    "œ": "oe",
    "þ": "th",
    "\u0131": "i",  # dotless i
}
_TABLE = str.maketrans({**DIGITS, **SPECIAL_LETTERS})
_SYMBOL_TABLE = str.maketrans(SYMBOLS)
_SYMBOL_AS_LETTER = re.compile(r"[@$!|+€]+(?=\w)")
_SEPARATORS = re.compile(r"[\W_]+")
_REPEATS = re.compile(r"(\w)\1+")
# The same steps on ASCII bytes, which is most queries and several times faster.
_ASCII_SYMBOL_AS_LETTER = re.compile(rb"[@$!|+]+(?=\w)")
_ASCII_SYMBOL_TABLE = bytes.maketrans(b"@$!|+", b"asilt")
_ASCII_TABLE = bytes(
    (c if chr(c).isalnum() and chr(c).isascii() and not chr(c).isupper() else ord(" "))
    for c in range(256)
).translate(bytes.maketrans(b"01345789", b"oieastbg"))


_COMBINING = re.compile(
    "["
    + "".join(re.escape(chr(c)) for c in range(0x300, 0x10000) if unicodedata.combining(chr(c)))
    + "]"
)

# Invisible format characters (soft hyphen, zero-width space and joiners, word joiner, BOM,
# direction marks, tags): deleted, not separators. They show nothing, so "demo\u00adword" reads
# as one word and must match as one.
_INVISIBLE = dict.fromkeys(
    c
    for c in [*range(0x80, 0x10000), *range(0xE0000, 0xE0080)]
    if unicodedata.category(chr(c)) == "Cf"
)


def normalise(text: str) -> str:
    """The spaced, normalised form of a text: words separated by single spaces."""
    text = text.casefold()
    if not text.isascii():
        # Decompose, drop the marks: most European text is plain ASCII afterwards.
        text = text.translate(_INVISIBLE)
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text)).casefold()
    tokens = _ascii_tokens(text) if text.isascii() else _unicode_tokens(text)
    return _REPEATS.sub(r"\1", " ".join(_join_single_runs(tokens)))


def _ascii_tokens(text: str) -> list[str]:
    data = text.encode()
    if _ASCII_SYMBOL_AS_LETTER.search(data):
        data = _ASCII_SYMBOL_AS_LETTER.sub(
            lambda m: m.group(0).translate(_ASCII_SYMBOL_TABLE), data
        )
    return data.translate(_ASCII_TABLE).decode().split()


def _unicode_tokens(text: str) -> list[str]:
    text = text.translate(_TABLE)  # letters without a decomposition ("ø"), and digits
    text = _SYMBOL_AS_LETTER.sub(lambda m: m.group(0).translate(_SYMBOL_TABLE), text)
    return _SEPARATORS.sub(" ", text).split()


def _join_single_runs(tokens: list[str]) -> list[str]:
    """Join runs of three or more one-character words: "p l a c e" -> "place"."""
    if all(len(token) > 1 for token in tokens):
        return tokens
    joined: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1:
            run.append(token)
            continue
        joined += ["".join(run)] if len(run) >= 3 else run
        run = []
        if token:
            joined.append(token)
    return joined


@dataclass(frozen=True)
class Term:
    term: str
    language: str
    mode: str
    category: str


@dataclass(frozen=True)
class Match:
    term: Term
    position: int


class TermListError(ValueError):
    """A term cannot be used; the message says which and why (never echoing other terms)."""


class Matcher:
    """An immutable automaton built from a term list; safe to share between threads."""

    def __init__(self, terms: Iterable[Term]) -> None:
        self._spaced = ahocorasick.Automaton(ahocorasick.STORE_ANY)
        self._compact = ahocorasick.Automaton(ahocorasick.STORE_ANY)
        self.size = 0
        for term in terms:
            automaton = self._compact if term.mode == "phrase" else self._spaced
            automaton.add_word(pattern(term), term)
            self.size += 1
        self._searches: list[tuple[Any, bool]] = []
        for automaton, compact in ((self._spaced, False), (self._compact, True)):
            if len(automaton):
                automaton.make_automaton()
                self._searches.append((automaton, compact))

    def first(self, text: str) -> Match | None:
        """The first match found in the text, or None."""
        spaced = normalise(text)
        for automaton, compact in self._searches:
            haystack = _compact(spaced) if compact else f" {spaced} "
            for end, term in automaton.iter(haystack):
                return Match(term=term, position=end)
        return None

    def matches(self, text: str) -> bool:
        return self.first(text) is not None


def _compact(spaced: str) -> str:
    """Spaces removed; a letter repeated across a former space collapses, like all repeats."""
    if " " not in spaced:
        return spaced
    compact = ""
    for token in spaced.split(" "):
        compact += token[1:] if compact and compact[-1] == token[0] else token
    return compact


def pattern(term: Term) -> str:
    """The automaton pattern of one term (see the module docstring)."""
    spaced = normalise(term.term)
    if not spaced:
        raise TermListError("a term has no letters or digits left after normalising.")
    if term.mode == "word":
        return f" {spaced} "
    if term.mode == "prefix":
        return f" {spaced}"
    if term.mode == "phrase":
        return _compact(spaced)
    raise TermListError(f"mode must be one of {', '.join(MODES)}.")
