"""The anonymous intercept survey: optional, stored without any link to a person, shown to
staff only as aggregates with small cells suppressed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from stopcsam.accounts.session_store import SessionStore
from stopcsam.conftest import StaffPersona
from stopcsam.core.clock import now
from stopcsam.outreach import services
from stopcsam.outreach.models import SurveyResponse
from stopcsam.outreach.survey import current_survey

pytestmark = pytest.mark.django_db


def test_the_survey_is_localised_and_optional() -> None:
    html = Client().get("/de/survey/").content.decode()
    assert "Was hat Sie heute hierher geführt?" in html
    response = Client().post("/de/survey/", {})
    assert response.status_code == 200 and SurveyResponse.objects.count() == 1


def test_answers_are_stored_without_any_link_to_a_person() -> None:
    client = Client()
    client.post("/en/survey/", {"reasons": ["o1", "o3"], "barriers": ["o1"], "helpful": "o2"})
    response = SurveyResponse.objects.get()
    fields = {f.name for f in SurveyResponse._meta.get_fields()}
    assert fields == {"id", "instrument_key", "instrument_version", "language", "day", "answers"}
    assert response.day == now().date()
    assert response.answers["reasons"] == ["o1", "o3"] and response.answers["helpful"] == "o2"


def test_an_impossible_answer_is_a_clear_400_and_stores_nothing() -> None:
    response = Client().post("/es/survey/", {"helpful": "o99"})
    assert response.status_code == 400
    assert SurveyResponse.objects.count() == 0


def _respond(n: int, helpful: str) -> None:
    for _ in range(n):
        Client().post("/en/survey/", {"helpful": helpful, "reasons": ["o2"]})


def test_staff_see_only_aggregates_with_small_cells_suppressed(
    coordinator: StaffPersona, therapist: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    _respond(6, "o1")
    _respond(2, "o3")
    exact = staff_client(coordinator).get("/en/staff/outreach/survey/").content.decode()
    assert "<td>6</td>" in exact and "<td>2</td>" in exact and "<td>8</td>" in exact
    shared = staff_client(therapist).get("/en/staff/outreach/survey/").content.decode()
    assert "<td>6</td>" in shared and "<td>2</td>" not in shared and ">hidden<" in shared
    assert Client().get("/en/staff/outreach/survey/").status_code == 302


def test_an_option_sent_twice_in_one_response_counts_once(coordinator: StaffPersona) -> None:
    """A repeated field (reasons=o1&reasons=o1...) was stored as sent and counted each time:
    one response made a cell of any size, larger than the total, and unsuppressed."""
    from stopcsam.outreach.selectors import survey_aggregates
    from stopcsam.outreach.survey import current_survey

    Client().post("/en/survey/", {"reasons": ["o1"] * 6})
    total, cells = survey_aggregates(user=coordinator.user, instrument=current_survey())
    assert total == 1
    assert [(cell.value, cell.count) for cell in cells["reasons"]][:2] == [("o1", 1), ("o2", 0)]


def test_a_survey_sent_again_in_one_browser_session_is_stored_once() -> None:
    """A double click, the browser's resend or a second tab stored the answers again, and one
    visitor counted twice in every figure staff see."""
    answers = {"helpful": "o2", "reasons": ["o1"]}
    visitor = Client()
    visitor.get("/en/survey/")
    first = visitor.post("/en/survey/", answers)
    again = visitor.post("/en/survey/", answers)
    assert first.status_code == again.status_code == 200
    assert "Thank you" in again.content.decode()
    assert SurveyResponse.objects.count() == 1
    Client().post("/en/survey/", answers)  # someone else
    assert SurveyResponse.objects.count() == 2


def test_two_sendings_read_before_either_is_saved_are_stored_once() -> None:
    """Two tabs sending at once each read the session before the other saved it."""
    visitor = Client()
    visitor.get("/de/survey/")
    key = visitor.cookies["sid"].value
    tabs = [SessionStore(key), SessionStore(key)]
    assert all(services.SESSION_SURVEYS_ANSWERED in tab for tab in tabs)  # both read now
    survey = current_survey()
    stored = [
        services.survey_answer_once(
            session=tab,
            instrument_key=survey.key,
            instrument_version=survey.version,
            language="de",
            answers={"helpful": "o1"},
        )
        for tab in tabs
    ]
    assert stored == [True, False]
    assert SurveyResponse.objects.count() == 1
