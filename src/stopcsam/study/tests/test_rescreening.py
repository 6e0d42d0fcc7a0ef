from __future__ import annotations

import pytest
from django.test import Client

from stopcsam.study.models import Enrolment, ProtocolVersion
from stopcsam.study.tests.conftest import SCREEN_OK

pytestmark = pytest.mark.django_db


def _screen(client, answers):
    return client.post("/en/study/screening/", {k: str(v) for k, v in answers.items()})


def test_a_later_ineligible_screening_forgets_the_earlier_eligible_one(
    version: ProtocolVersion,
) -> None:
    client = Client()
    assert _screen(client, SCREEN_OK).status_code == 302  # eligible: answers kept in the session
    refused = _screen(client, {**SCREEN_OK, "age": 16})  # the same person, answering again: 16
    assert "not the right fit" in refused.content.decode()
    # The eligible answers are still in the session, and still enrol:
    kept = "study_pending_screening" in client.session
    client.post("/en/start/", {"language": "en"})
    client.get("/en/study/enrol/")
    enrolled = list(Enrolment.objects.values_list("status", flat=True))
    assert not kept and not enrolled, (kept, enrolled)
