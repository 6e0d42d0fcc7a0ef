"""Term lists: reading the files (docs/deterrence.md) and keeping a current matcher per process.

The deploying organisation supplies the lists as CSV or JSON files. ``stopcsam reload_terms``
checks them and raises the version stamp in the database; every process compares its
matcher's version with the stamp at most once a second and rebuilds when it is behind, so a
reload reaches all processes without a restart. Term texts are never logged.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from stopcsam.outreach.matching import MODES, Matcher, Term, TermListError, pattern

log = logging.getLogger("stopcsam.outreach.terms")

LANGUAGES = ("en", "de", "cs", "pt", "es")
FIELDS = ("term", "language", "mode", "category")
MAX_TERM_LENGTH = 200
CATEGORY_MAX_LENGTH = 32
DEMO_TERM_LIST = Path(__file__).parent / "terms" / "placeholder-terms.csv"


@dataclass(frozen=True)
class LoadedTerms:
    terms: tuple[Term, ...]
    digest: str


# A hotline's keyword list is thousands of lines, not megabytes: a bigger file is a mistake.
MAX_FILE_BYTES = 16 * 2**20


def term_list_paths() -> list[Path]:
    configured = getattr(settings, "OUTREACH_TERM_LISTS", None) or []
    return [Path(p) for p in configured] or [DEMO_TERM_LIST]


def load_term_lists(paths: Iterable[Path]) -> LoadedTerms:
    """Read and check every file; raise TermListError naming the file and line at fault."""
    terms: list[Term] = []
    seen: dict[tuple[str, str], tuple[Term, str]] = {}  # (mode, pattern): the first, and where
    digest = hashlib.sha256()
    for path in paths:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise TermListError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB.")
            raw = path.read_bytes()
        except OSError as exc:
            raise TermListError(f"{path}: cannot be read ({exc.strerror}).") from exc
        digest.update(raw)
        try:
            text = raw.decode("utf-8-sig", errors="strict")
        except UnicodeDecodeError as exc:
            raise TermListError(f"{path.name}: not UTF-8 (byte {exc.start}).") from exc
        try:
            found = _parse_located(path.name, text)
        except csv.Error as exc:  # a field over csv's limit, a stray NUL
            raise TermListError(f"{path.name}: not a readable CSV file ({exc}).") from exc
        except RecursionError as exc:
            raise TermListError(f"{path.name}: nested too deep to be a term list.") from exc
        if not found:
            # A truncated or wholly commented-out file would switch the warnings off.
            raise TermListError(f"{path.name}: lists no terms.")
        for where, term in found:
            key = (term.mode, pattern(term))
            if key not in seen:
                seen[key] = (term, where)
                terms.append(term)
            elif (seen[key][0].language, seen[key][0].category) != (term.language, term.category):
                # The automaton keeps one entry per pattern: the other was dropped in silence.
                raise TermListError(
                    f"{where}: the same term as {seen[key][1]}, with another language or category."
                )
    return LoadedTerms(terms=tuple(terms), digest=digest.hexdigest())


def parse_term_file(name: str, text: str) -> list[Term]:
    return [term for _, term in _parse_located(name, text)]


def _parse_located(name: str, text: str) -> list[tuple[str, Term]]:
    """The file's terms, each with where it stands ("list.csv:line 3")."""
    rows = _json_rows(name, text) if name.endswith(".json") else _csv_rows(name, text)
    return [(f"{name}:{where}", _term(row, f"{name}:{where}")) for where, row in rows]


def _csv_rows(name: str, text: str) -> list[tuple[str, dict[str, str]]]:
    # Each kept line with its number in the file: a fault names the line the operator's
    # editor shows, not the count of rows after comments and blank lines were taken out.
    kept = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.startswith("#")
    ]
    reader = csv.DictReader(io.StringIO("\n".join(line for _, line in kept)))
    if reader.fieldnames is None or set(FIELDS) - set(reader.fieldnames):
        raise TermListError(f"{name}: the header must name the columns {', '.join(FIELDS)}.")
    return [(f"line {kept[reader.line_num - 1][0]}", row) for row in reader]


def _json_rows(name: str, text: str) -> list[tuple[str, dict[str, str]]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise TermListError(f"{name}: not valid JSON ({exc}).") from exc
    entries = data.get("terms") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise TermListError(f"{name}: expected a list of terms, or an object with 'terms'.")
    rows = []
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise TermListError(f"{name}:entry {n}: each term is an object.")
        # Strings only: anything else was read as Python writes it (the term "['x']" or
        # "True", the category "{'a': 1}") and matched or returned to partners so.
        for field in FIELDS:
            if entry.get(field) is not None and not isinstance(entry[field], str):
                raise TermListError(f"{name}:entry {n}: {field} must be text.")
        rows.append((f"entry {n}", {k: v for k, v in entry.items() if v is not None}))
    return rows


def _term(row: dict[str, str], where: str) -> Term:
    text = (row.get("term") or "").strip()
    language = (row.get("language") or "").strip()
    mode = (row.get("mode") or "word").strip()
    category = (row.get("category") or "").strip()
    if not text or len(text) > MAX_TERM_LENGTH:
        raise TermListError(f"{where}: the term is empty or longer than {MAX_TERM_LENGTH}.")
    if language not in LANGUAGES:
        raise TermListError(f"{where}: language must be one of {', '.join(LANGUAGES)}.")
    if mode not in MODES:
        raise TermListError(f"{where}: mode must be one of {', '.join(MODES)}.")
    if not category or len(category) > CATEGORY_MAX_LENGTH:
        raise TermListError(f"{where}: category is required (at most 32 characters).")
    term = Term(term=text, language=language, mode=mode, category=category)
    try:
        pattern(term)
    except TermListError as exc:
        raise TermListError(f"{where}: the term has no letters or digits.") from exc
    return term


# --- the process's current matcher ------------------------------------------------------------


class _Current:
    """The matcher this process uses, and the stamp version it was built for."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.matcher: Matcher | None = None
        self.version = -1
        self.checked_at = 0.0


_current = _Current()
STAMP_CHECK_SECONDS = 1.0


def matcher_is_fresh() -> bool:
    """Whether current_matcher() can answer from memory, without asking the database."""
    matcher, checked_at = _current.matcher, _current.checked_at
    return matcher is not None and time.monotonic() - checked_at < STAMP_CHECK_SECONDS


def current_matcher() -> Matcher:
    """The matcher for the newest term-list version, rebuilt when a reload raised it."""
    now = time.monotonic()
    if _current.matcher is not None and now - _current.checked_at < STAMP_CHECK_SECONDS:
        return _current.matcher
    from stopcsam.outreach.selectors import term_list_version

    version = term_list_version()
    with _current.lock:
        _current.checked_at = now
        if _current.matcher is None or version != _current.version:
            _rebuild(version)
        assert _current.matcher is not None
        return _current.matcher


def _rebuild(version: int) -> None:
    try:
        loaded = load_term_lists(term_list_paths())
    except TermListError as exc:
        # Keep serving the lists we had; the reload command reports the fault to the operator.
        log.error("term lists could not be loaded; keeping version %s: %s", _current.version, exc)
        if _current.matcher is None:
            _current.matcher = Matcher([])
        return
    _current.matcher = Matcher(loaded.terms)
    _current.version = version
    log.info("term lists version %s loaded: %s terms", version, _current.matcher.size)


def forget_current_matcher() -> None:
    """Make the next request rebuild (tests, and the process that ran a reload)."""
    with _current.lock:
        _current.matcher = None
        _current.version = -1
        _current.checked_at = 0.0
