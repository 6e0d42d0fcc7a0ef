"""Pseudonymised export for researchers: tidy CSV and a codebook.

One row per participant x time point x variable. Participants appear only as a study ID, a
keyed HMAC that cannot be reversed without the deployment's lookup key; no codename digest,
database key or timestamp finer than a day leaves. Free text is left out unless asked for.
The CSV is produced row by row, so memory stays flat however large the study is.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import timedelta
from itertools import batched
from typing import Any

from stopcsam.core.fields import EncryptedTextField
from stopcsam.core.instruments import Instrument, localised, value_domain
from stopcsam.study.models import Enrolment, ProtocolVersion, Response
from stopcsam.study.protocol import Protocol
from stopcsam.study.selectors import parsed_protocol, study_id

FREE_TEXT = Response._meta.get_field("free_text")
assert isinstance(FREE_TEXT, EncryptedTextField)

COLUMNS = (
    "study_id",
    "arm",
    "stratum",
    "site",
    "language",
    "time_point",
    "day_from_randomization",
    "instrument",
    "instrument_version",
    "variable",
    "kind",
    "value",
)


class _Line:
    """A write target for csv.writer that hands back each formatted line."""

    def write(self, text: str) -> str:
        return text


# Participants whose responses are read (and held) at a time: the export's memory is this many
# participants' answers, whatever the size of the study.
PARTICIPANTS_AT_A_TIME = 250


def export_rows(
    version: ProtocolVersion,
    *,
    include_free_text: bool = False,
) -> Iterator[tuple[Any, ...]]:
    """Rows in study id order, each participant's together. Not in the order of enrolment:
    that is the order in which people came, and beside anything else that is known of
    when one of them came (the audit log's times, a therapist's memory) it would tell whose
    answers a study id's are (a review finding). Responses are read a few hundred
    participants at a time, so memory stays flat."""
    protocol = parsed_protocol(version)
    enrolments = (
        Enrolment.objects.filter(protocol=version).exclude(arm="").values_list("pk", flat=True)
    )
    ordered = sorted((study_id(version, pk), pk) for pk in enrolments.iterator())
    for chunk in batched(ordered, PARTICIPANTS_AT_A_TIME):
        by_enrolment: dict[int, list[tuple[Any, ...]]] = {}
        for row in _responses(version, [pk for _, pk in chunk]):
            by_enrolment.setdefault(row[0], []).append(row)
        for sid, pk in chunk:
            for row in by_enrolment.get(pk, ()):
                yield from _response_rows(protocol, sid, row, include_free_text)


def _responses(version: ProtocolVersion, enrolment_ids: list[int]) -> Iterator[tuple[Any, ...]]:
    """The completed questionnaires of these participants, in the order they were answered.
    Completed only: an unfinished one has no scores (and is not counted by CONSORT), so its
    rows would contradict the codebook."""
    return (
        Response.objects.filter(
            enrolment__protocol=version,
            enrolment_id__in=enrolment_ids,
            completed_at__isnull=False,
        )
        .order_by("enrolment_id", "id")
        .values_list(
            "enrolment_id",
            "enrolment__arm",
            "enrolment__stratum",
            "enrolment__site",
            "enrolment__language",
            "enrolment__randomized_at",
            "time_point",
            "instrument",
            "instrument_version",
            "answers",
            "free_text",
            "scores",
            "completed_at",
            "started_at",
        )
        .iterator(chunk_size=2000)
    )


def _response_rows(
    protocol: Protocol, sid: str, row: tuple[Any, ...], include_free_text: bool
) -> Iterator[tuple[Any, ...]]:
    (
        enrolment_id,
        arm,
        stratum,
        site,
        language,
        randomized_at,
        time_point,
        name,
        instrument_version,
        answers,
        free_raw,
        scores,
        done,
        started,
    ) = row
    instrument = protocol.instruments.get(name)
    if instrument is None:
        return
    moment = done or started
    # Whole days elapsed (towards zero), as the schedule's "day" and "window_days" count
    # them; a difference of UTC dates made the same elapsed time a day more or less.
    day = int((moment - randomized_at) / timedelta(days=1)) if randomized_at else ""
    head = (sid, arm, stratum, site, language, time_point, day, name, instrument_version)
    free = {}
    if include_free_text:  # values_list() leaves the field sealed: opened under its row
        opened = FREE_TEXT.open(
            free_raw, enrolment_id=enrolment_id, time_point=time_point, instrument=name
        )
        free = json.loads(opened or "{}")
    for item in instrument.items:
        if item.type == "text":
            if include_free_text:
                yield (*head, item.key, "text", free.get(item.key, ""))
            continue
        yield (*head, item.key, "item", _cell(answers.get(item.key)))
    for scale in instrument.scales:
        yield (*head, scale.key, "scale", _cell(scores.get(scale.key)))


def _safe_cell(value: Any) -> Any:
    """A cell never a formula: a spreadsheet runs a cell that begins with = + - @ (or a tab
    or carriage return before one) as one when a researcher opens the file. Free text, option
    values joined or alone, keys and labels (a site writes the protocol) are kept as text
    with a leading apostrophe (OWASP's CSV injection); numbers stay numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_line(row: Iterable[Any]) -> str:
    """One line of the export's CSV files: every cell they hold is written here, guarded."""
    return str(csv.writer(_Line()).writerow([_safe_cell(value) for value in row]))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return value


def export_csv(version: ProtocolVersion, *, include_free_text: bool = False) -> Iterator[str]:
    yield _csv_line(COLUMNS)
    for row in export_rows(version, include_free_text=include_free_text):
        yield _csv_line(row)


# --- codebook -------------------------------------------------------------------------------


def codebook(version: ProtocolVersion, *, include_free_text: bool = False) -> dict[str, Any]:
    protocol = parsed_protocol(version)
    return {
        "protocol": {"key": protocol.key, "version": protocol.version},
        "columns": _column_docs(protocol),
        "variables": [
            entry
            for instrument in protocol.instruments.values()
            for entry in _variables(instrument, include_free_text)
        ],
        "free_text_included": include_free_text,
    }


def _column_docs(protocol: Protocol) -> list[dict[str, str]]:
    arms = "|".join(arm.key for arm in protocol.arms)
    points = "|".join(point.key for point in protocol.schedule)
    return [
        {
            "name": "study_id",
            "type": "string",
            "values": "S + 14 hex characters",
            "description": "Pseudonymous participant ID (keyed HMAC); not reversible.",
        },
        {"name": "arm", "type": "category", "values": arms, "description": "Allocated arm."},
        {
            "name": "stratum",
            "type": "category",
            "values": "|".join(protocol.strata),
            "description": "Randomization stratum (factors joined by |).",
        },
        {"name": "site", "type": "category", "values": "site code", "description": "Study site."},
        {
            "name": "language",
            "type": "category",
            "values": "en|de|cs|pt|es",
            "description": "Language of the participant.",
        },
        {
            "name": "time_point",
            "type": "category",
            "values": points,
            "description": "Scheduled assessment.",
        },
        {
            "name": "day_from_randomization",
            "type": "integer",
            "values": "..",
            "description": "Day the answers were given, relative to randomization (day 0).",
        },
        {
            "name": "instrument",
            "type": "category",
            "values": "|".join(protocol.instruments),
            "description": "Instrument key.",
        },
        {
            "name": "instrument_version",
            "type": "string",
            "values": "",
            "description": "Version of the instrument definition.",
        },
        {
            "name": "variable",
            "type": "category",
            "values": "see variables",
            "description": "Item or scale key.",
        },
        {
            "name": "kind",
            "type": "category",
            "values": "item|scale|text",
            "description": "Raw item answer, scale score, or free text.",
        },
        {
            "name": "value",
            "type": "depends on variable",
            "values": "see variables",
            "description": "Empty when not answered or the scale had too few answers.",
        },
    ]


def _variables(instrument: Instrument, include_free_text: bool) -> list[dict[str, Any]]:
    entries = []
    for item in instrument.items:
        if item.type == "text" and not include_free_text:
            continue
        entries.append(
            {
                "instrument": instrument.key,
                "instrument_version": instrument.version,
                "variable": item.key,
                "kind": "text" if item.type == "text" else "item",
                "type": _variable_type(item.type, item.option_values()),
                "values": value_domain(item),
                "reverse_scored": item.reverse,
                "label": localised(item.label, "en"),
            }
        )
    for scale in instrument.scales:
        entries.append(
            {
                "instrument": instrument.key,
                "instrument_version": instrument.version,
                "variable": scale.key,
                "kind": "scale",
                "type": "number",
                "values": f"{scale.method} of {', '.join(scale.items)} "
                f"(at least {scale.min_answered} answered)",
                "reverse_scored": False,
                "label": localised(scale.label, "en"),
            }
        )
    return entries


def _variable_type(kind: str, values: list[int | str]) -> str:
    if kind == "multiple":
        return "set (values joined by ;)"
    if kind in ("likert", "number") or (values and all(isinstance(v, int) for v in values)):
        return "integer"
    return "text" if kind == "text" else "category"


def codebook_csv(book: dict[str, Any]) -> Iterator[str]:
    fields = (
        "instrument",
        "instrument_version",
        "variable",
        "kind",
        "type",
        "values",
        "reverse_scored",
        "label",
    )
    yield _csv_line(fields)
    for entry in book["variables"]:
        # Labels and ranges come from the protocol, written by coordinators in the admin: a
        # label may begin with = and a range with -, and neither may run as a formula.
        yield _csv_line(entry[field] for field in fields)
