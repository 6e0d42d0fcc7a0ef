"""Shared figures hide counts under 5 and, where totals or rates would give one back by
subtraction, further counts too (complementary suppression), and no more than that.

The property tests check each shared report with a reader of their own: it knows every figure
shown, how they add up and that counts are never negative, and tries every way of moving a
unit between hidden counts that keeps the shown figures. A hidden count no such move changes
is one the reader can work out.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from datetime import date, timedelta

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stopcsam.conftest import StaffPersona
from stopcsam.core.clock import now
from stopcsam.core.disclosure import SMALL_CELL
from stopcsam.outreach import selectors
from stopcsam.outreach.models import FunnelCount, SurveyResponse
from stopcsam.outreach.survey import current_survey

pytestmark = pytest.mark.django_db

CAMPAIGNS = ("search-co", "forum-co")
LANGUAGES = ("en", "de", "cs", "pt", "es")
STEPS = ("warning_shown", "help_click")


def _last_month() -> date:
    return now().date().replace(day=1) - timedelta(days=1)


def _seed(counts: dict[tuple[str, str, str], int]) -> None:
    FunnelCount.objects.bulk_create(
        FunnelCount(day=_last_month(), campaign=c, language=lang, step=step, count=n)
        for (step, c, lang), n in counts.items()
        if n
    )


def _rows(client: Client, campaign: str, language: str) -> dict[str, str]:
    """The funnel page's rows, by step, for a campaign ("" all) and a language ("" all)."""
    url = f"/en/staff/outreach/funnel/?campaign={campaign}&language={language}"
    html = client.get(url).content.decode()
    rows = html.split('id="step-')[1:]
    return {row.split('"', 1)[0]: row.split("</tr>", 1)[0] for row in rows}


# --- examples -------------------------------------------------------------------------------


def test_all_campaigns_minus_the_campaigns_shown_no_longer_gives_a_hidden_one_back(
    therapist: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    """All campaigns 23, search-co 20: forum-co's hidden count was 23 - 20 = 3, for all
    languages and for German alike."""
    _seed({("help_click", "search-co", "de"): 20, ("help_click", "forum-co", "de"): 3})
    client = staff_client(therapist)
    for language in ("", "de"):
        every = _rows(client, "", language)["help_click"]
        one = _rows(client, "search-co", language)["help_click"]
        assert ">hidden<" in every or ">hidden<" in one
    shown = [_rows(client, c, lang)["help_click"] for c in ("", "search-co") for lang in ("", "de")]
    assert any(">20<" in row or ">23<" in row for row in shown)  # not everything is hidden
    html = client.get("/en/staff/outreach/funnel/").content.decode()
    assert "give a hidden count away by subtraction" in html


def test_no_rate_gives_back_a_count_hidden_to_protect_another(
    therapist: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    """A count hidden as a complement next to 200 warnings shown: its rate, 200 x rate,
    gave it back."""
    _seed(
        {
            ("warning_shown", "search-co", "de"): 200,
            ("help_click", "search-co", "de"): 20,
            ("help_click", "forum-co", "de"): 3,
        }
    )
    client = staff_client(therapist)
    complements = 0
    for c, lang in itertools.product(("", "search-co"), ("", "de")):
        rows = _rows(client, c, lang)
        if ">hidden<" in rows["help_click"] and ">200<" in rows["warning_shown"]:
            complements += 1
            assert "%" not in rows["help_click"]
    assert complements  # the case this test is about did arise


def test_the_responses_minus_the_answers_no_longer_give_a_small_blank_count(
    therapist: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    """22 responses, and four answers of 5 each: 2 people skipped the question."""
    _respond({"o1": 5, "o2": 5, "o3": 5, "o4": 5}, blank=2, reasons=0)
    html = staff_client(therapist).get("/de/staff/outreach/survey/").content.decode()
    helpful = html.split("<caption>", 4)[4].split("</table>", 1)[0]
    assert helpful.count("<td>5</td>") == 3 and ">verborgen<" in helpful
    assert "durch Subtraktion" in html


# --- the reader's work ----------------------------------------------------------------------


def _readable(
    values: dict[object, int],
    shown: dict[object, int | None],
    interior: list[object],
    sums: dict[object, list[object]],
) -> set[object]:
    """The hidden cells whose value no unit move keeps the shown figures for. A move changes
    each interior cell by -1, 0 or +1 (every other table with the same shown figures differs
    from this one by such moves, one cycle at a time); a sum moves with its parts."""
    hidden_interior = [cell for cell in interior if shown[cell] is None]
    choices = [(0, 1) if values[cell] == 0 else (-1, 0, 1) for cell in hidden_interior]
    moved: set[object] = set()
    for steps in itertools.product(*choices):
        delta = dict(zip(hidden_interior, steps, strict=True))
        for cell in interior:
            delta.setdefault(cell, 0)
        for total, parts in sums.items():
            delta[total] = sum(delta[part] for part in parts)
        if all(
            delta[cell] == 0 if shown[cell] is not None else values[cell] + delta[cell] >= 0
            for cell in delta
        ):
            moved |= {cell for cell, d in delta.items() if d}
    return {cell for cell in shown if shown[cell] is None and cell not in moved}


def _check_protection(
    values: dict[object, int],
    shown: dict[object, int | None],
    interior: list[object],
    sums: dict[object, list[object]],
    *,
    unpublished: frozenset[object] = frozenset(),
) -> None:
    """Every count under 5 is hidden, none that is hidden above zero can be worked out (a
    zero describes nobody; a count never published only while it is small), and each
    count of 5 or more that is hidden must be: shown, it would give one back."""

    def recovered(figures: dict[object, int | None]) -> set[object]:
        readable = _readable(values, figures, interior, sums)
        return {
            cell
            for cell in readable
            if values[cell] > 0 and (cell not in unpublished or values[cell] < SMALL_CELL)
        }

    for cell, value in shown.items():
        assert value is None or value == values[cell]
        if values[cell] < SMALL_CELL:
            assert value is None, f"{cell}: {values[cell]} is shown"
    assert not recovered(shown), f"worked out from the shown figures: {recovered(shown)}"
    for cell in shown.keys() - unpublished:
        if shown[cell] is None and values[cell] >= SMALL_CELL:
            assert recovered({**shown, cell: values[cell]}), f"{cell} is hidden for nothing"


# --- the funnel -----------------------------------------------------------------------------


funnel_tables = st.dictionaries(
    st.tuples(st.sampled_from(STEPS), st.sampled_from(CAMPAIGNS), st.sampled_from(("de", "en"))),
    st.integers(min_value=0, max_value=40) | st.integers(min_value=0, max_value=6),
    max_size=8,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(counts=funnel_tables)
def test_no_hidden_funnel_count_can_be_worked_out_from_the_shared_figures(
    therapist: StaffPersona, counts: dict[tuple[str, str, str], int]
) -> None:
    FunnelCount.objects.all().delete()
    _seed(counts)
    slices = list(itertools.product((None, *CAMPAIGNS), (None, *LANGUAGES)))
    reports = {
        (c, lang): selectors.funnel_report(
            user=therapist.user,
            start=_last_month(),
            end=_last_month(),
            campaign=c,
            language=lang,
            shared=True,
        )
        for c, lang in slices
    }
    # A campaign without a count in the month is left out of the table (it would only be
    # more cover), so the reader here takes its figures for the zeros they are.
    active = {c for (_, c, _), n in counts.items() if n}
    interior = [(c, lang) for c in CAMPAIGNS if c in active for lang in LANGUAGES]
    sums = {
        (c, lang): [cell for cell in interior if c in (None, cell[0]) and lang in (None, cell[1])]
        for c, lang in slices
        if c is None or lang is None
    }
    for n, step in enumerate(STEPS):
        values: dict[object, int] = {
            (c, lang): sum(
                n
                for (at, cc, ll), n in counts.items()
                if at == step and c in (None, cc) and lang in (None, ll)
            )
            for c, lang in slices
        }
        shown: dict[object, int | None] = {s: reports[s][n].count for s in slices}
        _check_protection(values, shown, interior, sums)
        for report in reports.values():  # a rate only where both its counts are shown
            if report[n].from_previous is not None:
                assert report[n].count is not None and report[n - 1].count is not None
            if report[n].from_first is not None:
                assert report[n].count is not None and report[0].count is not None


# --- the survey -----------------------------------------------------------------------------


def _respond(helpful: dict[str, int], *, blank: int, reasons: int) -> None:
    answers: Iterable[dict[str, object]] = [
        *({"helpful": option} for option, n in helpful.items() for _ in range(n)),
        *({} for _ in range(blank)),
    ]
    SurveyResponse.objects.bulk_create(
        SurveyResponse(
            instrument_key="intercept_survey",
            instrument_version="1",
            language="en",
            day=now().date(),
            answers={**answer, **({"reasons": ["o1"]} if n < reasons else {})},
        )
        for n, answer in enumerate(answers)
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    helpful=st.fixed_dictionaries(
        {f"o{n}": st.integers(0, 12) | st.integers(0, 5) for n in range(1, 5)}
    ),
    blank=st.integers(0, 7),
    reasons=st.integers(0, 30),
)
def test_no_hidden_survey_count_can_be_worked_out_from_the_shared_figures(
    therapist: StaffPersona, helpful: dict[str, int], blank: int, reasons: int
) -> None:
    SurveyResponse.objects.all().delete()
    _respond(helpful, blank=blank, reasons=reasons)
    total, cells = selectors.survey_aggregates(
        user=therapist.user, instrument=current_survey(), shared=True
    )
    values: dict[object, int] = {"total": sum(helpful.values()) + blank, "blank": blank}
    values |= {option: n for option, n in helpful.items()}
    shown: dict[object, int | None] = {"total": total, "blank": None}
    shown |= {cell.value: cell.count for cell in cells["helpful"]}
    interior = [*helpful, "blank"]
    _check_protection(
        values, shown, interior, {"total": interior}, unpublished=frozenset({"blank"})
    )
    chose_reason = min(reasons, values["total"])
    reason = next(cell.count for cell in cells["reasons"] if cell.value == "o1")
    assert reason == (chose_reason if chose_reason >= SMALL_CELL else None)
