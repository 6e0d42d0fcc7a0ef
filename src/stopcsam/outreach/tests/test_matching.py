"""Matching: normalisation, modes, and property tests (any normalised variant of a listed
term matches; text that does not contain a term never matches)."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stopcsam.outreach.matching import Matcher, Term, TermListError, normalise

ALPHA = Term("placeholder-term-alpha", "en", "phrase", "placeholder-a")
WORD = Term("demoword", "en", "word", "placeholder-a")
PREFIX = Term("demoprefix", "en", "prefix", "placeholder-b")
MATCHER = Matcher([ALPHA, WORD, PREFIX])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Pl4ceh0lder  TERM alpha!!", "placeholder term alpha"),
        ("Zástupný-VÝRAZ_delta", "zastupny vyraz delta"),
        ("p l a c e h o l d e r", "placeholder"),
        ("plaaaaceholder", "placeholder"),
        ("p@ss $ign", "pas sign"),
        ("  ...  ", ""),
    ],
)
def test_it_normalises_case_diacritics_leetspeak_separators_and_repeats(
    text: str, expected: str
) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    "query",
    [
        "placeholder term alpha",
        "where is PLACEHOLDER_TERM_ALPHA please",
        "pl4c3h0ld3r-t3rm-4lph4",
        "placeholdertermalpha",
        "p.l.a.c.e.h.o.l.d.e.r term alpha",
        "a demoword here",
        "Dèmöwörd",
        "demoprefixes and more",
    ],
)
def test_it_matches_variants(query: str) -> None:
    assert MATCHER.matches(query)


@pytest.mark.parametrize(
    "query",
    [
        "placeholder term",
        "alpha placeholder",
        "demowordy",
        "xdemoword",
        "predemoprefix",
        "alpha term placeholder",
        "",
    ],
)
def test_it_respects_word_boundaries_and_modes(query: str) -> None:
    assert not MATCHER.matches(query)


@pytest.mark.parametrize("invisible", ["\u00ad", "\u200b", "\u200d", "\u2060", "\ufeff"])
def test_invisible_characters_inside_a_word_do_not_split_it(invisible: str) -> None:
    """A soft hyphen or zero-width space shows nothing, yet it became a separator: the word
    term no longer matched what the reader sees as the word."""
    assert normalise(f"demo{invisible}word") == "demoword"
    assert MATCHER.matches(f"a demo{invisible}word here")
    assert MATCHER.matches(f"demo{invisible}prefixes")


def test_it_reports_the_category_and_language_of_the_term() -> None:
    found = MATCHER.first("about demoprefixed things")
    assert found is not None and found.term.category == "placeholder-b"


def test_it_rejects_a_term_without_letters() -> None:
    with pytest.raises(TermListError):
        Matcher([Term("--!!--", "en", "word", "x")])


def test_an_empty_list_matches_nothing() -> None:
    assert not Matcher([]).matches("placeholder term alpha")


# --- properties ---------------------------------------------------------------------------------

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10)
CONTEXT = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8), max_size=4
)
DIACRITIC = {"a": "á", "e": "ë", "i": "î", "o": "ø", "u": "ů", "c": "č", "s": "š", "n": "ñ"}
LEET = {"o": "0", "i": "1", "e": "3", "a": "4", "s": "5", "t": "7", "b": "8", "g": "9"}


@st.composite
def terms(draw: st.DrawFn) -> Term:
    mode = draw(st.sampled_from(["word", "phrase", "prefix"]))
    count = draw(st.integers(1, 3)) if mode == "phrase" else 1
    text = " ".join(draw(st.lists(WORDS, min_size=count, max_size=count)))
    return Term(text, "en", mode, "placeholder")


@st.composite
def variant_of(draw: st.DrawFn, term: Term) -> str:
    """The term as someone might type it to slip past a filter."""
    words = []
    for word in term.term.split(" "):
        chars = []
        for ch in word:
            how = draw(st.sampled_from(["keep", "upper", "diacritic", "leet", "repeat"]))
            if how == "upper":
                ch = ch.upper()
            elif how == "diacritic":
                ch = DIACRITIC.get(ch, ch)
            elif how == "leet":
                ch = LEET.get(ch, ch)
            elif how == "repeat":
                ch = ch * draw(st.integers(2, 4))
            chars.append(ch)
        words.append("".join(chars))
    separators = [" ", "-", "_", ".", " - ", "  ", "/"] + ([""] if term.mode == "phrase" else [])
    joined = words[0]
    for word in words[1:]:
        joined += draw(st.sampled_from(separators)) + word
    if term.mode == "prefix":
        joined += draw(st.text(alphabet="xyz", max_size=3))
    return joined


@settings(max_examples=300, deadline=None)
@given(data=st.data(), term=terms(), before=CONTEXT, after=CONTEXT)
def test_any_normalised_variant_of_a_listed_term_matches(
    data: st.DataObject, term: Term, before: list[str], after: list[str]
) -> None:
    variant = data.draw(variant_of(term))
    text = " ".join([*before, variant, *after])
    assert Matcher([term]).matches(text), (term, text)


def _compact(text: str) -> str:
    return re.sub(r"(\w)\1+", r"\1", normalise(text).replace(" ", ""))


@settings(max_examples=300, deadline=None)
@given(term=terms(), text=st.text(max_size=80))
def test_text_that_does_not_contain_the_term_never_matches(term: Term, text: str) -> None:
    assume(_compact(term.term) not in _compact(text))
    assert not Matcher([term]).matches(text)


@settings(max_examples=200, deadline=None)
@given(
    term=st.builds(
        lambda t: Term(t, "en", "phrase", "x"), st.text(alphabet="abcdefghijklm ", min_size=3)
    ),
    # No "!": before a letter or digit it stands for "i" (matching.SYMBOLS), one of the term's.
    text=st.text(alphabet="nopqrsuvwxyzñśů 26.,-_?\n", max_size=120),
)
def test_text_from_other_letters_never_matches(term: Term, text: str) -> None:
    assume(normalise(term.term))
    assert not Matcher([term]).matches(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_the_fast_ascii_path_means_the_same_as_the_unicode_path(text: str) -> None:
    from stopcsam.outreach.matching import _REPEATS, _join_single_runs, _unicode_tokens

    slow = _REPEATS.sub(r"\1", " ".join(_join_single_runs(_unicode_tokens(text.casefold()))))
    assert normalise(text) == slow
