"""The resource directory as JSON or CSV: reading with row-by-row validation, and writing.

Both formats carry the same fields (see docs/deterrence.md, "Resource directory").
Languages and contact fields are lists in JSON and ``;``-separated in CSV. JSON also carries
the texts in other languages (``texts``: description, hours and cost by language); a CSV
import leaves those as they are.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.core.exceptions import ValidationError

from stopcsam.outreach.exceptions import ImportValidationError
from stopcsam.outreach.models import Resource, ResourceKind, ResourceText

FIELDS = (
    "country",
    "name",
    "kind",
    "languages",
    "description",
    "website",
    "phone",
    "email",
    "hours",
    "cost",
    "anonymous",
)
LANGUAGES = ("en", "de", "cs", "pt", "es")
TEXT_FIELDS = ("description", "hours", "cost")
TRUE = {"true", "yes", "1"}
FALSE = {"false", "no", "0", ""}


def read_resources(name: str, text: str) -> list[Resource]:
    """Unsaved, validated resources; ImportValidationError lists every problem found."""
    rows = _json_rows(text) if name.endswith(".json") else _csv_rows(text)
    if not rows:
        # With --replace, an empty or truncated file hid every service of the directory.
        raise ImportValidationError(["the file lists no services."])
    problems: list[str] = []
    resources: list[Resource] = []
    seen: set[tuple[str, str]] = set()
    for where, row in rows:
        try:
            resource = _resource(row)
        except ImportValidationError as exc:
            problems += [f"{where}: {problem}" for problem in exc.problems]
            continue
        key = (resource.country, resource.name)
        if key in seen:
            problems.append(f"{where}: {resource.name} ({resource.country}) appears twice.")
        seen.add(key)
        resources.append(resource)
    if problems:
        raise ImportValidationError(problems)
    return resources


def _json_rows(text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ImportValidationError([f"not valid JSON: {exc}"]) from exc
    except RecursionError as exc:  # nested too deep: a traceback, not a problem named
        raise ImportValidationError(["not valid JSON: nested too deeply."]) from exc
    entries = data.get("resources") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ImportValidationError(["expected a list, or an object with 'resources'."])
    return [(f"entry {n}", entry) for n, entry in enumerate(entries, start=1)]


def _csv_rows(text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = set(FIELDS) - set(reader.fieldnames or [])
    if missing:
        raise ImportValidationError([f"missing columns: {', '.join(sorted(missing))}."])
    rows = []
    try:
        for n, row in enumerate(reader, start=2):  # line 1 is the header
            row["languages"] = [v.strip() for v in (row.get("languages") or "").split(";") if v]
            rows.append((f"line {n}", row))
    except csv.Error as exc:  # a field past the module's limit: a traceback, not a problem
        raise ImportValidationError([f"line {len(rows) + 2}: not valid CSV ({exc})."]) from exc
    return rows


def _resource(row: Any) -> Resource:
    if not isinstance(row, dict):
        raise ImportValidationError(["each entry must be an object."])
    problems = []
    unknown = set(row) - set(FIELDS) - {"texts"}
    if unknown:
        problems.append(f"unknown fields: {', '.join(sorted(map(str, unknown)))}.")
    languages = row.get("languages")
    # Each one a string first: a list inside the list ([["de"]]) was a TypeError, not a
    # problem named with its entry.
    if (
        not isinstance(languages, list)
        or not languages
        or not all(isinstance(code, str) for code in languages)
        or set(languages) - set(LANGUAGES)
    ):
        problems.append(f"languages must list one or more of {', '.join(LANGUAGES)}.")
    anonymous = _boolean(row.get("anonymous", False))
    if anonymous is None:
        problems.append("anonymous must be true or false.")
    if row.get("kind") not in ResourceKind.values:
        problems.append(f"kind must be one of {', '.join(ResourceKind.values)}.")
    # Strings only, as in ``texts``: anything else was stored as Python writes it
    # ("['Demo helpline']"), and 0 as nothing.
    not_text = [f for f in FIELDS if f not in _NON_TEXT and not isinstance(row.get(f), str | None)]
    problems += [f"{f}: must be text." for f in not_text]
    texts = {f: str(row.get(f) or "").strip() for f in FIELDS if f not in _NON_TEXT}
    resource = Resource(
        **texts, kind=str(row.get("kind")), languages=languages, anonymous=bool(anonymous)
    )
    try:
        # Not its constraints: a service already listed is updated, not refused (checked
        # against the database, every service of a file that changed one was "already there").
        resource.full_clean(
            exclude=["kind", "languages"], validate_unique=False, validate_constraints=False
        )
    except ValidationError as exc:
        problems += [f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()]
    translated = _texts(row.get("texts"), problems) if "texts" in row else None
    if problems:
        raise ImportValidationError(problems)
    resource.imported_texts = translated  # type: ignore[attr-defined]  # None: as they are
    return resource


def _texts(value: Any, problems: list[str]) -> list[ResourceText]:
    """``{"de": {"description": ..., "hours": ..., "cost": ...}, ...}``, checked."""
    if not isinstance(value, dict):
        problems.append("texts must be an object of languages.")
        return []
    found = []
    for language, fields in value.items():
        if language not in LANGUAGES:
            problems.append(f"texts: {language!s:.20} is not one of {', '.join(LANGUAGES)}.")
            continue
        if not isinstance(fields, dict) or set(fields) - set(TEXT_FIELDS):
            problems.append(f"texts {language}: give only {', '.join(TEXT_FIELDS)}.")
            continue
        # Strings only: anything else was stored as Python writes it ("['Werktags']").
        not_text = [f for f in TEXT_FIELDS if not isinstance(fields.get(f, ""), str | None)]
        if not_text:
            problems += [f"texts {language}: {f}: must be text." for f in not_text]
            continue
        text = ResourceText(
            language=language, **{f: (fields.get(f) or "").strip() for f in TEXT_FIELDS}
        )
        try:
            text.full_clean(exclude=["resource"], validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            problems += [
                f"texts {language}: {field}: {' '.join(errors)}"
                for field, errors in exc.message_dict.items()
            ]
            continue
        found.append(text)
    return found


_NON_TEXT = {"kind", "languages", "anonymous"}


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in TRUE else False if text in FALSE else None


def _export_row(resource: Resource) -> dict[str, Any]:
    return {field: getattr(resource, field) for field in FIELDS}


def write_json(resources: list[Resource]) -> str:
    rows = []
    for resource in resources:
        row = _export_row(resource)
        texts = {t.language: {f: getattr(t, f) for f in TEXT_FIELDS} for t in resource.texts.all()}
        if texts:
            row["texts"] = texts
        rows.append(row)
    return json.dumps({"resources": rows}, ensure_ascii=False, indent=2) + "\n"


def write_csv(resources: list[Resource]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for resource in resources:
        row = _export_row(resource)
        row["languages"] = ";".join(resource.languages)
        row["anonymous"] = "true" if resource.anonymous else "false"
        writer.writerow(row)
    return out.getvalue()
