"""Arbitrary text at the login and signup forms: never a 500, never an unintended row."""

from __future__ import annotations

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stopcsam.accounts.models import Participant, StaffUser
from stopcsam.core.models import AuditEvent

pytestmark = pytest.mark.django_db
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
text = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)


def _counts() -> tuple[int, int, int]:
    return Participant.objects.count(), StaffUser.objects.count(), AuditEvent.objects.count()


@FUZZ
@given(codename=text, lang=st.sampled_from(["en", "de", "cs", "pt", "es"]))
def test_participant_login_survives_any_text(codename: str, lang: str) -> None:
    before = _counts()
    response = Client().post(f"/{lang}/login/", {"codename": codename})
    assert response.status_code in (302, 400)
    assert _counts() == before


@FUZZ
@given(language=text)
def test_signup_survives_any_text(language: str) -> None:
    before = _counts()
    response = Client().post("/en/start/", {"language": language})
    if language in {"en", "de", "cs", "pt", "es"}:
        assert response.status_code == 200
        assert _counts() == (before[0] + 1, before[1], before[2] + 1)
    else:
        assert response.status_code == 400 and b"errorlist" in response.content
        assert _counts() == before


@FUZZ
@given(username=text, password=text, code=text)
def test_staff_login_survives_any_text(username: str, password: str, code: str) -> None:
    before = _counts()
    response = Client().post(
        "/en/staff/login/", {"username": username, "password": password, "otp_token": code}
    )
    assert response.status_code == 400
    assert _counts() == before
