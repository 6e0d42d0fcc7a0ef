from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from stopcsam.core.instruments import (
    InstrumentDefinitionError,
    instrument_form,
    instrument_from_dict,
    score,
    value_domain,
)

LIKERT = [{"value": v, "label": {"en": f"{v}", "de": f"{v} (de)"}} for v in range(5)]
DEFINITION: dict[str, Any] = {
    "key": "wellbeing",
    "version": "2",
    "title": {"en": "How have you been?", "de": "Wie ging es Ihnen?"},
    "items": [
        {"key": "calm", "type": "likert", "label": {"en": "I felt calm."}, "options": LIKERT},
        {
            "key": "tense",
            "type": "likert",
            "label": {"en": "I felt tense."},
            "options": LIKERT,
            "reverse": True,
        },
        {"key": "slept", "type": "likert", "label": {"en": "I slept well."}, "options": LIKERT},
        {
            "key": "days",
            "type": "number",
            "label": {"en": "On how many days?"},
            "min": 0,
            "max": 14,
        },
        {
            "key": "helped",
            "type": "multiple",
            "label": {"en": "What helped?"},
            "options": [
                {"value": "talk", "label": "Talking"},
                {"value": "sport", "label": "Sport"},
            ],
            "required": False,
        },
        {"key": "note", "type": "text", "label": "Anything else?", "required": False},
    ],
    "scales": [
        {"key": "total", "items": ["calm", "tense", "slept"], "method": "sum", "min_answered": 2},
        {"key": "average", "items": ["calm", "tense", "slept"], "method": "mean"},
    ],
}


def test_it_scores_sum_mean_and_reverse_items() -> None:
    instrument = instrument_from_dict(DEFINITION)
    scores = score(instrument, {"calm": 4, "tense": 1, "slept": 2})
    assert scores == {"total": 4 + 3 + 2, "average": 3.0}


def test_a_scale_needs_its_minimum_of_answers() -> None:
    instrument = instrument_from_dict(DEFINITION)
    assert score(instrument, {"calm": 4, "tense": None}) == {"total": None, "average": None}
    assert score(instrument, {"calm": 4, "slept": 0}) == {"total": 4.0, "average": None}


@given(st.lists(st.integers(0, 4), min_size=3, max_size=3))
def test_reverse_scoring_mirrors_the_range(values: list[int]) -> None:
    instrument = instrument_from_dict(DEFINITION)
    calm, tense, slept = values
    total = score(instrument, {"calm": calm, "tense": tense, "slept": slept})["total"]
    assert total == calm + (4 - tense) + slept
    assert 0 <= (total or 0) <= 12


def test_the_form_validates_with_localised_messages() -> None:
    instrument = instrument_from_dict(DEFINITION)
    with translation.override("de"):
        form = instrument_form(
            instrument, language="de", data={"calm": "9", "tense": "1", "days": "15"}
        )
        assert not form.is_valid()
        assert set(form.errors) == {"calm", "slept", "days"}
        assert "Please" not in str(form.errors)
        assert form.fields["calm"].choices[0] == ("0", "0 (de)")


def test_a_partial_form_accepts_unfinished_answers() -> None:
    instrument = instrument_from_dict(DEFINITION)
    form = instrument_form(instrument, language="en", data={"calm": "3"}, partial=True)
    assert form.is_valid()
    assert form.answers()["calm"] == 3 and form.answers()["tense"] is None


def test_answers_keep_their_types_and_resume() -> None:
    instrument = instrument_from_dict(DEFINITION)
    form = instrument_form(
        instrument,
        language="en",
        data={
            "calm": "3",
            "tense": "0",
            "slept": "4",
            "days": "2",
            "helped": ["talk", "sport"],
            "note": "I am worried about my urges",
        },
    )
    assert form.is_valid(), form.errors
    answers = form.answers()
    assert answers == {
        "calm": 3,
        "tense": 0,
        "slept": 4,
        "days": 2,
        "helped": ["talk", "sport"],
        "note": "I am worried about my urges",
    }
    resumed = instrument_form(instrument, language="en", initial=answers)
    assert resumed.initial["helped"] == ["talk", "sport"] and resumed.initial["calm"] == "3"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key": "Bad Key"}, "key"),
        ({"items": []}, "non-empty"),
        ({"items": [{"key": "a", "type": "slider", "label": "x"}]}, "type"),
        ({"items": [{"key": "a", "type": "likert", "label": "x", "options": LIKERT[:1]}]}, "two"),
        ({"items": [{"key": "a", "type": "text", "label": "x", "reverse": True}]}, "reverse"),
        ({"scales": [{"key": "s", "items": ["note"]}]}, "numeric"),
        ({"scales": [{"key": "s", "items": ["calm"], "min_answered": 2}]}, "min_answered"),
        ({"title": {"fr": "x"}}, "en"),
    ],
)
def test_broken_definitions_are_refused_clearly(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InstrumentDefinitionError, match=message):
        instrument_from_dict({**DEFINITION, **change})


def test_value_domains_describe_allowed_values() -> None:
    instrument = instrument_from_dict(DEFINITION)
    assert value_domain(instrument.item("calm")) == "0|1|2|3|4"
    assert value_domain(instrument.item("days")) == "0..14"
    assert value_domain(instrument.item("note")).startswith("text")
