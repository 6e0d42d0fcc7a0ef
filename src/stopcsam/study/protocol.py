"""The study protocol as data: arms, strata, screening rules, consent, instruments, schedule.

A protocol is a YAML or JSON document (see docs/researchers.md and protocols/demo.yaml),
validated here into frozen dataclasses. Nothing in the code names an arm or an instrument:
one deployment runs the two-arm STOP-CSAM trial and its four-arm successor unchanged.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from stopcsam.core.instruments import (
    LANGUAGES,
    Instrument,
    InstrumentDefinitionError,
    instrument_from_dict,
)
from stopcsam.study.exceptions import ProtocolError

KEY = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
RULE_OPERATORS = (">=", "<=", ">", "<", "==", "!=", "in", "not_in")
STRATUM_FACTORS = ("site", "language")


@dataclass(frozen=True)
class Arm:
    key: str
    label: Mapping[str, str]
    ratio: int
    offers_chat: bool
    offers_chat_after: str | None  # a time point key, for waiting-list arms


@dataclass(frozen=True)
class Rule:
    item: str
    op: str
    value: Any
    reason: str

    def admits(self, answer: Any) -> bool:
        if answer is None:
            return False
        try:
            return _compare(self.op, answer, self.value)
        except TypeError:
            return False


@dataclass(frozen=True)
class ConsentDocument:
    language: str
    title: str
    body: tuple[str, ...]  # paragraphs
    items: tuple[tuple[str, str], ...]  # (key, text) that must each be ticked

    def canonical_text(self, version: str) -> str:
        """The exact text shown, whose SHA-256 the consent record keeps."""
        lines = [f"{self.title} (version {version}, {self.language})", "", *self.body, ""]
        lines += [f"[x] {text}" for _key, text in self.items]
        return "\n".join(lines)

    def sha256(self, version: str) -> str:
        return hashlib.sha256(self.canonical_text(version).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TimePoint:
    key: str
    label: Mapping[str, str]
    day: int  # days after randomization (baseline: 0, before randomization)
    window_days: int
    instruments: tuple[str, ...]
    before_randomization: bool = False
    # Of ``instruments``, those asked only of arms that have had the chat by then (a question
    # about the sessions): see ``Protocol.instruments_at``.
    chat_arms_only: tuple[str, ...] = ()

    @property
    def instruments_for_every_arm(self) -> tuple[str, ...]:
        return tuple(name for name in self.instruments if name not in self.chat_arms_only)


@dataclass(frozen=True)
class Protocol:
    key: str
    version: str
    title: Mapping[str, str]
    arms: tuple[Arm, ...]
    strata: tuple[str, ...]
    block_multipliers: tuple[int, ...]
    site_by_language: Mapping[str, str]
    screening: Instrument
    rules: tuple[Rule, ...]
    consent_version: str
    consent: Mapping[str, ConsentDocument]
    instruments: Mapping[str, Instrument]
    schedule: tuple[TimePoint, ...]
    course_sessions: int
    primary: str = ""  # the time point of the primary comparison ("" : the last)

    def arm(self, key: str) -> Arm:
        for arm in self.arms:
            if arm.key == key:
                return arm
        raise KeyError(key)

    def time_point(self, key: str) -> TimePoint:
        for point in self.schedule:
            if point.key == key:
                return point
        raise KeyError(key)

    @property
    def baseline(self) -> TimePoint:
        return self.schedule[0]

    def instruments_at(self, point: TimePoint, arm: Arm | None) -> tuple[str, ...]:
        """The instruments of ``point`` for a participant in ``arm`` (None: not randomized
        yet). Its ``chat_arms_only`` ones go to arms that have had the chat by then: those
        that offer it at once, and a waiting list at time points after the one that opens
        it (the reviewers' case: asked at the follow-up, the waiting list has had sessions)."""
        if arm is None:
            return point.instruments_for_every_arm
        opened = self.time_point(arm.offers_chat_after) if arm.offers_chat_after else None
        if arm.offers_chat or (opened is not None and point.day > opened.day):
            return point.instruments
        return point.instruments_for_every_arm

    @property
    def primary_time_point(self) -> TimePoint:
        """Where the arms are compared (CONSORT's "analysed" and "lost to follow-up"): for a
        waiting list, the time point after which it is offered the chat."""
        return self.time_point(self.primary) if self.primary else self.schedule[-1]

    def block_base(self) -> list[str]:
        """One unit of allocation: each arm repeated by its ratio."""
        return [arm.key for arm in self.arms for _ in range(arm.ratio)]

    def largest_block(self) -> int:
        return len(self.block_base()) * max(self.block_multipliers)

    def consent_document(self, language: str) -> ConsentDocument:
        return self.consent.get(language) or self.consent["en"]


def _compare(op: str, answer: Any, value: Any) -> bool:
    if op == "in":
        return answer in value
    if op == "not_in":
        return answer not in value
    if op == "==":
        return bool(answer == value)
    if op == "!=":
        return bool(answer != value)
    comparisons = {
        ">=": answer >= value,
        "<=": answer <= value,
        ">": answer > value,
        "<": answer < value,
    }
    return bool(comparisons[op])


# --- reading a protocol ---------------------------------------------------------------------


def protocol_from_dict(data: Any) -> Protocol:
    if not isinstance(data, Mapping):
        raise ProtocolError("A protocol must be a mapping at the top level.")
    try:
        return _protocol(data)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        # A list where a mapping belongs, a word where a number does, a field left out: the
        # checks below name most; what they miss is still refused, not a server error.
        raise ProtocolError(f"A part of the protocol has the wrong shape ({exc!r}).") from exc


def _protocol(data: Mapping[str, Any]) -> Protocol:
    key = _key(data.get("key"), "key")
    try:
        screening = instrument_from_dict(_required(data, "screening")["questions"])
        instruments = _instruments(_required(data, "instruments"))
    except (InstrumentDefinitionError, KeyError, TypeError) as exc:
        raise ProtocolError(f"Instrument problem: {exc}") from exc
    arms = _arms(_required(data, "arms"))
    schedule = _schedule(_required(data, "schedule"), instruments)
    for arm in arms:
        if arm.offers_chat_after and arm.offers_chat_after not in {p.key for p in schedule}:
            raise ProtocolError(f"arms.{arm.key}: offers_chat_after names no time point.")
    consent_version, consent = _consent(_required(data, "consent"))
    return Protocol(
        key=key,
        version=str(_required(data, "version")),
        title=_text(data.get("title"), "title"),
        arms=arms,
        strata=_strata(data.get("strata", [])),
        block_multipliers=_multipliers(data.get("block_multipliers", [1, 2, 3])),
        site_by_language=_site_map(data.get("site_by_language", {})),
        screening=screening,
        rules=_rules(data["screening"].get("rules", []), screening),
        consent_version=consent_version,
        consent=consent,
        instruments=instruments,
        schedule=schedule,
        course_sessions=_positive(data.get("course_sessions", 4), "course_sessions"),
        primary=_primary(data.get("primary_time_point"), schedule),
    )


def _required(data: Mapping[str, Any], name: str) -> Any:
    if name not in data or data[name] in (None, "", [], {}):
        raise ProtocolError(f"'{name}' is missing.")
    return data[name]


def _key(value: Any, where: str) -> str:
    if not isinstance(value, str) or not KEY.match(value):
        raise ProtocolError(f"{where}: {value!r} is not a valid key (a-z, 0-9, _ or -).")
    return value


def _text(value: Any, where: str) -> dict[str, str]:
    if isinstance(value, str):
        return {"en": value}
    if not isinstance(value, Mapping) or not value.get("en"):
        raise ProtocolError(f"{where}: needs a text, at least in 'en'.")
    return {str(k): str(v) for k, v in value.items()}


def _positive(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ProtocolError(f"{where}: must be a whole number of at least 1.")
    return value


def _arms(raw: Any) -> tuple[Arm, ...]:
    if not isinstance(raw, list) or len(raw) < 2:
        raise ProtocolError("arms: a trial needs at least two arms.")
    arms = tuple(
        Arm(
            key=_key(a.get("key"), f"arms[{n}]"),
            label=_text(a.get("label"), f"arms[{n}]"),
            ratio=_positive(a.get("ratio", 1), f"arms[{n}].ratio"),
            offers_chat=bool(a.get("offers_chat", False)),
            offers_chat_after=a.get("offers_chat_after"),
        )
        for n, a in enumerate(raw)
    )
    if len({a.key for a in arms}) != len(arms):
        raise ProtocolError("arms: keys must be unique.")
    return arms


def _strata(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or any(f not in STRATUM_FACTORS for f in raw):
        raise ProtocolError(f"strata: a list drawn from {STRATUM_FACTORS}.")
    return tuple(raw)


def _multipliers(raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw:
        raise ProtocolError("block_multipliers: a non-empty list of whole numbers.")
    return tuple(_positive(m, "block_multipliers") for m in raw)


def _site_map(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping) or set(raw) - set(LANGUAGES):
        raise ProtocolError("site_by_language: maps language codes to site codes.")
    return {str(k): str(v) for k, v in raw.items()}


def _rules(raw: Any, screening: Instrument) -> tuple[Rule, ...]:
    rules = []
    keys = {item.key for item in screening.items}
    for n, rule in enumerate(raw or []):
        if rule.get("item") not in keys:
            raise ProtocolError(f"screening.rules[{n}]: item {rule.get('item')!r} is unknown.")
        if rule.get("op") not in RULE_OPERATORS:
            raise ProtocolError(f"screening.rules[{n}]: op must be one of {RULE_OPERATORS}.")
        rules.append(
            Rule(
                item=rule["item"],
                op=rule["op"],
                value=rule.get("value"),
                reason=_key(rule.get("reason"), f"screening.rules[{n}].reason"),
            )
        )
    return tuple(rules)


def _consent(raw: Any) -> tuple[str, dict[str, ConsentDocument]]:
    documents = {}
    for language, doc in (raw.get("documents") or {}).items():
        items = tuple(
            (_key(i.get("key"), f"consent.{language}.items"), str(i["text"]))
            for i in doc.get("items", [])
        )
        if not items:
            raise ProtocolError(f"consent.{language}: needs at least one item to tick.")
        documents[language] = ConsentDocument(
            language=language,
            title=str(doc["title"]),
            body=tuple(str(p) for p in doc.get("body", [])),
            items=items,
        )
    if "en" not in documents:
        raise ProtocolError("consent: needs at least an English document.")
    return str(raw.get("version", "1")), documents


def _instruments(raw: Any) -> dict[str, Instrument]:
    instruments = {}
    for definition in raw:
        instrument = instrument_from_dict(definition)
        instruments[instrument.key] = instrument
    return instruments


def _schedule(raw: Any, instruments: Mapping[str, Instrument]) -> tuple[TimePoint, ...]:
    points = []
    for n, point in enumerate(raw):
        names = tuple(point.get("instruments", []))
        unknown = [name for name in names if name not in instruments]
        if unknown or not names:
            raise ProtocolError(f"schedule[{n}]: unknown or missing instruments {unknown}.")
        chat_only = point.get("chat_arms_only", [])
        if (
            not isinstance(chat_only, list)
            or not all(isinstance(name, str) for name in chat_only)
            or not set(chat_only) < set(names)
            or (chat_only and n == 0)
        ):
            raise ProtocolError(
                f"schedule[{n}].chat_arms_only: some of the time point's instruments, not all,"
                " and none at the baseline (no arm is known there)."
            )
        points.append(
            TimePoint(
                key=_key(point.get("key"), f"schedule[{n}]"),
                label=_text(point.get("label"), f"schedule[{n}]"),
                day=int(point.get("day", 0)),
                window_days=_positive(point.get("window_days", 7), f"schedule[{n}].window_days"),
                instruments=names,
                before_randomization=n == 0,
                chat_arms_only=tuple(chat_only),
            )
        )
    if not points:
        raise ProtocolError("schedule: needs at least a baseline time point.")
    return tuple(points)


def _primary(raw: Any, schedule: tuple[TimePoint, ...]) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str) or raw not in {point.key for point in schedule[1:]}:
        raise ProtocolError("primary_time_point: names no time point after the baseline.")
    return str(raw)


def allocation_ratio(protocol: Protocol) -> dict[str, Fraction]:
    total = sum(arm.ratio for arm in protocol.arms)
    return {arm.key: Fraction(arm.ratio, total) for arm in protocol.arms}
