"""A screening (and a consent) is counted once, however often its form is sent (a review
finding): the double click, the browser's resend and "back, then send again" each counted
another person screened (and excluded), and the funnel another screening started, another
eligible, another consented."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.sessions.backends.base import SessionBase
from django.test import Client, RequestFactory

from stopcsam.core import clock
from stopcsam.outreach.selectors import funnel_count
from stopcsam.study import views
from stopcsam.study.models import ProtocolVersion
from stopcsam.study.selectors import consort_counts
from stopcsam.study.tests.conftest import SCREEN_OK, enrolled, signed_in

pytestmark = pytest.mark.django_db


def _screen(client: Client, answers: dict[str, object]) -> Any:
    return client.post("/en/study/screening/", {k: str(v) for k, v in answers.items()})


def _funnel(step: str) -> int:
    return funnel_count(step=step, language="en", day=clock.now().date())


def test_a_screening_sent_twice_is_counted_once(version: ProtocolVersion) -> None:
    client = Client()
    client.get("/en/study/screening/")
    assert _screen(client, SCREEN_OK).status_code == 302
    client.get("/en/study/screening/")  # back: the page is fetched again (no-store)
    assert _screen(client, SCREEN_OK).status_code == 302
    assert _screen(client, SCREEN_OK).status_code == 302  # the browser's resend
    counts = consort_counts(version)
    assert counts["assessed"] == 1 and counts["excluded"] == 0
    assert _funnel("screening_started") == 1 and _funnel("eligible") == 1


def test_an_ineligible_screening_sent_twice_is_excluded_once(version: ProtocolVersion) -> None:
    client = Client()
    for _ in range(2):
        assert "not the right fit" in _screen(client, {**SCREEN_OK, "age": 16}).content.decode()
    counts = consort_counts(version)
    assert counts["assessed"] == 1 and counts["excluded_reasons"] == {"under_18": 1}
    assert "under_18" not in str(dict(client.session))  # kept sealed: why, never in plain


def test_new_answers_sent_again_move_the_exclusion(version: ProtocolVersion) -> None:
    """The latest answers decide, in the counts as on the page: the flow must not show one
    person assessed, excluded and then randomized as well."""
    client = Client()
    _screen(client, {**SCREEN_OK, "age": 16})
    _screen(client, {**SCREEN_OK, "in_treatment": "yes"})
    counts = consort_counts(version)
    assert counts["assessed"] == 1
    assert counts["excluded_reasons"] == {"already_in_treatment": 1}
    assert _screen(client, SCREEN_OK).status_code == 302
    counts = consort_counts(version)
    assert counts["assessed"] == 1 and counts["excluded"] == 0


def test_another_browser_is_another_screening(version: ProtocolVersion) -> None:
    for client in (Client(), Client()):
        _screen(client, SCREEN_OK)
    assert consort_counts(version)["assessed"] == 2
    assert _funnel("eligible") == 2


def test_two_sendings_at_once_count_once(version: ProtocolVersion) -> None:
    """A double click with JavaScript off: the second request read the session before the
    first one saved its count, and counted the person again."""
    client = Client()
    client.get("/en/study/screening/")
    key = client.session.session_key
    factory = RequestFactory()
    requests = []
    for _ in range(2):
        request = factory.post("/en/study/screening/", {k: str(v) for k, v in SCREEN_OK.items()})
        request.session = type(client.session)(key)
        request.session.get("anything")  # both loaded before either is answered
        request.participant = None  # type: ignore[attr-defined]
        requests.append(request)
    for request in requests:
        assert views.screening_start(request).status_code == 302
        assert isinstance(request.session, SessionBase)
        request.session.save()  # as the session middleware does after the response
    assert consort_counts(version)["assessed"] == 1
    assert _funnel("eligible") == 1


def test_a_session_ended_meanwhile_is_not_a_server_error(version: ProtocolVersion) -> None:
    """Signed out in another tab (the session row deleted) after this request read it."""
    from django.contrib.sessions.models import Session

    client = Client()
    client.get("/en/study/screening/")
    request = RequestFactory().post(
        "/en/study/screening/", {k: str(v) for k, v in SCREEN_OK.items()}
    )
    request.session = type(client.session)(client.session.session_key)
    request.session.get("anything")
    request.participant = None  # type: ignore[attr-defined]
    Session.objects.all().delete()
    assert views.screening_start(request).status_code == 302
    assert consort_counts(version)["assessed"] == 1


def test_an_enrolled_participant_is_not_screened_again(version: ProtocolVersion) -> None:
    client = signed_in(enrolled(version))
    assert client.get("/en/study/screening/")["Location"] == "/en/study/"
    assert _screen(client, {**SCREEN_OK, "age": 16})["Location"] == "/en/study/"
    assert consort_counts(version)["assessed"] == 0


def test_a_consent_sent_twice_at_once_is_one_step_of_the_funnel(version: ProtocolVersion) -> None:
    """The second sending read the enrolment as eligible before the first one's consent was
    recorded: the consent was recorded once, and the funnel counted two people consenting."""
    import re
    from unittest import mock

    from stopcsam.study.models import Enrolment

    enrolment = enrolled(version, consented=False)
    client = signed_in(enrolment)
    page = client.get("/en/study/consent/").content.decode()
    data = {name: "on" for name in re.findall(r'name="(item_\w+)"', page)}
    data["shown"] = re.findall(r'name="shown" value="([0-9a-f]+)"', page)[0]
    read_by_the_second = Enrolment.objects.get(pk=enrolment.pk)
    assert client.post("/en/study/consent/", data).status_code == 302
    with mock.patch.object(
        views.selectors, "participant_enrolment", return_value=read_by_the_second
    ):
        assert client.post("/en/study/consent/", data).status_code == 302
    assert _funnel("consented") == 1


def test_randomized_in_another_tab_meanwhile_is_one_step_of_the_funnel(
    version: ProtocolVersion,
) -> None:
    """Two tabs complete the baseline's last two questionnaires at once. The second to save
    randomizes, and its page counts the step; the first, reading the enrolment again after
    its own save, found it randomized too and counted the step again."""
    from unittest import mock

    from stopcsam.study import services
    from stopcsam.study.models import Enrolment
    from stopcsam.study.selectors import parsed_protocol
    from stopcsam.study.tests.conftest import answer_baseline

    enrolment = enrolled(version)
    protocol = parsed_protocol(version)
    answer_baseline(enrolment, protocol.instruments["urge"])
    real_save = services.response_save

    def then_the_other_tab(**kwargs: Any) -> Any:
        saved = real_save(**kwargs)
        other_tab = Enrolment.objects.get(pk=enrolment.pk)
        answer_baseline(other_tab, protocol.instruments["wellbeing"])  # randomizes
        return saved

    client = signed_in(enrolment)
    data = {"se_resist": "3", "se_help": "4", "se_lost": "1"}
    with mock.patch.object(views.services, "response_save", side_effect=then_the_other_tab):
        client.post("/en/study/questionnaire/baseline/selfefficacy/", data)
    assert Enrolment.objects.get().arm
    assert _funnel("randomized") == 0  # the other tab's page counts it
