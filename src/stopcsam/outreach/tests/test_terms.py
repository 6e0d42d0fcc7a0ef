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
        (HEADER + "x,fr,word,c\n", "line 2: language"),
        (HEADER + "ok,en,word,c\nx,en,fuzzy,c\n", "line 3: mode"),
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


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({"term": ["placeholder-one"]}, "entry 1: term must be text"),
        ({"term": True}, "entry 1: term must be text"),
        ({"category": {"a": 1}}, "entry 1: category must be text"),
    ],
)
def test_json_values_that_are_not_strings_are_named(entry: dict[str, object], said: str) -> None:
    """They were read as Python writes them: the term "['placeholder-one']" or "True",
    the category "{'a': 1}", and matched or returned to partners so."""
    good = {"term": "placeholder-one", "language": "en", "mode": "word", "category": "cat-a"}
    with pytest.raises(TermListError, match=said):
        parse_term_file("list.json", json.dumps([{**good, **entry}]))


def test_the_same_term_with_another_category_or_language_is_refused_with_both_rows(
    tmp_path: Path,
) -> None:
    """The automaton keeps one entry per pattern: the second term was dropped in silence,
    and the reload counted it all the same."""
    first = tmp_path / "a.csv"
    first.write_text(HEADER + "placeholder-one,en,word,cat-a\n", encoding="utf-8")
    second = tmp_path / "b.csv"
    second.write_text(
        HEADER + "placeholder-two,en,word,cat-a\nPlaceholder One,de,word,cat-b\n",
        encoding="utf-8",
    )
    with pytest.raises(TermListError, match=r"b\.csv:line 3: .*a\.csv:line 2"):
        load_term_lists([first, second])


def test_a_term_listed_twice_alike_counts_once(tmp_path: Path) -> None:
    listing = tmp_path / "a.csv"
    listing.write_text(
        HEADER + "placeholder-one,en,word,cat-a\nPlaceholder-One,en,word,cat-a\n",
        encoding="utf-8",
    )
    assert len(load_term_lists([listing]).terms) == 1


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("empty.csv", HEADER),
        ("commented.csv", "# placeholder-one,en,word,cat-a\n" + HEADER),
        ("empty.json", '{"terms": []}'),
    ],
)
def test_a_file_without_terms_is_refused(name: str, text: str, tmp_path: Path) -> None:
    """It was loaded as zero terms: a truncated or wholly commented-out file switched the
    warnings off in every process, and the reload reported success."""
    listing = tmp_path / name
    listing.write_text(text, encoding="utf-8")
    with pytest.raises(TermListError, match=f"{name}: lists no terms"):
        load_term_lists([listing])


def test_a_fault_names_the_line_of_the_file_comments_included() -> None:
    """Rows were counted after comments and blank lines were taken out: "row 2" of a file
    with a comment header was on line 6."""
    text = "# a comment\n\n" + HEADER + "placeholder-one,en,word,cat-a\n# more\nx,fr,word,c\n"
    with pytest.raises(TermListError, match=r"list\.csv:line 6: language"):
        parse_term_file("list.csv", text)
