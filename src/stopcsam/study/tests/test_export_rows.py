"""The research export against its codebook (a logic review, 2026-12-01)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from stopcsam.core import clock
from stopcsam.study.export import codebook, export_csv
from stopcsam.study.models import Enrolment, ProtocolVersion
from stopcsam.study.selectors import parsed_protocol
from stopcsam.study.services import response_save
from stopcsam.study.tests.conftest import randomized_to

pytestmark = pytest.mark.django_db


def _rows(version: ProtocolVersion) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO("".join(export_csv(version)))))


def _answer_week2(version: ProtocolVersion, enrolment: Enrolment, *, complete: bool) -> None:
    """Every wellbeing item answered at week 2, the questionnaire completed or saved."""
    wellbeing = parsed_protocol(version).instruments["wellbeing"]
    answers = {item.key: item.option_values()[1] for item in wellbeing.items if item.type != "text"}
    response_save(
        enrolment=enrolment,
        time_point="week2",
        instrument=wellbeing,
        answers=answers,
        complete=complete,
    )


def test_an_unfinished_questionnaire_is_not_exported_as_answers(
    version: ProtocolVersion,
) -> None:
    """ "Save and finish later" at week 2, every wellbeing item answered, never completed
    (the window then closes). The export gives the three items as answers and the scale
    wellbeing_sum empty: the codebook says a scale is empty only when too few items were
    answered, and nothing in the row tells a researcher the questionnaire was abandoned
    (CONSORT, which counts completed answers only, disagrees with the data set)."""
    enrolment = randomized_to(version, "chat")
    Enrolment.objects.filter(pk=enrolment.pk).update(randomized_at=clock.now() - timedelta(days=15))
    enrolment.refresh_from_db()
    _answer_week2(version, enrolment, complete=False)
    scale = next(v for v in codebook(version)["variables"] if v["variable"] == "wellbeing_sum")
    assert "at least 2 answered" in scale["values"]
    week2 = [r for r in _rows(version) if r["time_point"] == "week2"]
    assert week2 == [], [(r["variable"], r["value"]) for r in week2]


def test_day_from_randomization_counts_elapsed_days_not_utc_dates(
    version: ProtocolVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Week 2 opens on day 14 for 7 days. Randomized at 23:30 UTC, a week-2 answer given
    14 days and one hour later is exported as day 15, and one given on the window's last
    evening as day 21, outside [14, 21): the day is a difference of UTC calendar dates, so
    the same elapsed time reads differently by the hour of randomization."""
    randomized = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: randomized)
    enrolment = randomized_to(version, "chat")
    assert enrolment.randomized_at == randomized
    answered = randomized + timedelta(days=20, hours=23)  # inside week 2's window
    monkeypatch.setattr(clock, "now", lambda: answered)
    _answer_week2(version, enrolment, complete=True)
    days = {r["day_from_randomization"] for r in _rows(version) if r["time_point"] == "week2"}
    assert days == {"20"}, days


def test_rows_come_in_study_id_order_not_in_the_order_people_enrolled(
    version: ProtocolVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order of enrolment is the order people came: beside anything else known of when
    one of them came, it would tell whose answers a study id's are. Each participant's rows
    stay together, and fewer participants than there are are read at a time."""
    from stopcsam.study import export

    monkeypatch.setattr(export, "PARTICIPANTS_AT_A_TIME", 4, raising=False)
    enrolments = [randomized_to(version, "chat") for _ in range(9)]
    Enrolment.objects.update(randomized_at=clock.now() - timedelta(days=15))
    for enrolment in enrolments:
        enrolment.refresh_from_db()
        _answer_week2(version, enrolment, complete=True)
    in_order = [r["study_id"] for r in _rows(version)]
    seen = list(dict.fromkeys(in_order))
    assert len(seen) == 9
    assert seen == sorted(seen)
    assert in_order == sorted(in_order)  # each participant's rows together
    from stopcsam.study.selectors import study_id

    assert seen != [study_id(version, e.pk) for e in enrolments]  # 1 chance in 362,880
