"""Term lists: the documented formats, clear errors, and reload without a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from stopcsam.core.models import AuditEvent
from stopcsam.outreach import terms
from stopcsam.outreach.matching import TermListError
from stopcsam.outreach.models import TermListStamp
from stopcsam.outreach.terms import current_matcher, load_term_lists, parse_term_file

HEADER = "term,language,mode,category\n"


def test_the_shipped_list_holds_only_placeholders() -> None:
    loaded = load_term_lists([terms.DEMO_TERM_LIST])
    assert loaded.terms and all(
        "placeholder" in t.category and ("demo" in t.term or "-" in t.term) for t in loaded.terms
    )


def test_csv_and_json_mean_the_same() -> None:
    csv_terms = parse_term_file("a.csv", HEADER + "placeholder-one,en,phrase,cat-a\n")
    json_terms = parse_term_file(
        "a.json",
        json.dumps(
            {
                "terms": [
                    {
                        "term": "placeholder-one",
                        "language": "en",
                        "mode": "phrase",
                        "category": "cat-a",
                    }
                ]
            }
        ),
    )
    assert csv_terms == json_terms


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("term,language\nx,en\n", "header must name"),
        (HEADER + "x,fr,word,c\n", "row 1: language"),
        (HEADER + "ok,en,word,c\nx,en,fuzzy,c\n", "row 2: mode"),
        (HEADER + "x,en,word,\n", "category is required"),
        (HEADER + "---,en,word,c\n", "no letters"),
    ],
)
def test_faulty_files_are_refused_with_the_row(text: str, message: str) -> None:
    with pytest.raises(TermListError, match=message):
        parse_term_file("list.csv", text)


@pytest.mark.django_db
def test_reload_reaches_running_processes_without_a_restart(
    tmp_path: Path, settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(terms, "STAMP_CHECK_SECONDS", 0.0)
    listing = tmp_path / "terms.csv"
    listing.write_text(HEADER + "placeholder-one,en,phrase,cat-a\n", encoding="utf-8")
    settings.OUTREACH_TERM_LISTS = [str(listing)]  # type: ignore[attr-defined]
    assert current_matcher().matches("placeholder one")
    listing.write_text(HEADER + "placeholder-two,en,phrase,cat-b\n", encoding="utf-8")
    assert current_matcher().matches("placeholder one")  # nothing changes until a reload
    call_command("reload_terms")
    assert current_matcher().matches("placeholder two")
    assert not current_matcher().matches("placeholder one")
    # A reload run by another process only raises the stamp in the database; this process
    # notices the new version on its next check and rebuilds.
    listing.write_text(HEADER + "placeholder-three,en,phrase,cat-c\n", encoding="utf-8")
    TermListStamp.objects.filter(pk=1).update(version=F("version") + 1)
    assert current_matcher().matches("placeholder three")
    event = AuditEvent.objects.get(action="outreach.term_lists_reloaded")
    assert event.detail["terms"] == 1 and "placeholder" not in json.dumps(event.detail)


@pytest.mark.django_db
def test_a_faulty_reload_changes_nothing(tmp_path: Path, settings: object) -> None:
    listing = tmp_path / "terms.csv"
    listing.write_text(HEADER + "x,en,nonsense,c\n", encoding="utf-8")
    settings.OUTREACH_TERM_LISTS = [str(listing)]  # type: ignore[attr-defined]
    with pytest.raises(CommandError, match="Nothing changed"):
        call_command("reload_terms")
    assert not AuditEvent.objects.filter(action="outreach.term_lists_reloaded").exists()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "latin1.csv",
            (HEADER + "marcador-épsilon,pt,phrase,placeholder-b\n").encode("latin-1"),
            "not UTF-8",
        ),
        ("huge-field.csv", (HEADER + "x" * 200_000 + ",en,word,a\n").encode(), "readable CSV"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    ],
)
def test_a_file_that_is_no_term_list_is_refused_by_name_not_with_a_traceback(
    name: str, data: bytes, message: str, tmp_path: Path, settings: object
) -> None:
    from stopcsam.outreach.checks import check_term_lists

    listing = tmp_path / name
    listing.write_bytes(data)
    settings.OUTREACH_TERM_LISTS = [str(listing)]  # type: ignore[attr-defined]
    with pytest.raises(TermListError, match=message):
        load_term_lists([listing])
    assert [error.id for error in check_term_lists()] == ["outreach.E001"]
    with pytest.raises(CommandError, match="Nothing changed"):
        call_command("reload_terms")


def test_a_term_list_larger_than_the_limit_is_refused(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    listing = tmp_path / "big.csv"
    listing.write_text(HEADER + "marker,en,word,placeholder-a\n" * 100, encoding="utf-8")
    monkeypatch.setattr(terms, "MAX_FILE_BYTES", 1000)
    with pytest.raises(TermListError, match="larger than"):
        load_term_lists([listing])
