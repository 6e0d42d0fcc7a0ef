"""Made-up API keys cannot load the database without limit: each process looks up only so
many keys it does not remember a second (then a JSON 503, as for an outage), and refuses a
key the database did not know from memory. Keys it knows are never held up."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from stopcsam.outreach import selectors, services
from stopcsam.outreach.models import ApiKey
from stopcsam.outreach.tests.conftest import PartnerPersona

pytestmark = pytest.mark.django_db
PATH = "/api/v1/deterrence/check"


@pytest.fixture
def seconds(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The lookups' clock, standing still until a test moves it: no refill by chance."""
    now = [1000.0]
    monkeypatch.setattr(selectors.key_lookups, "clock", lambda: now[0])
    return now


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The digests looked up in the database, in order."""
    looked_up: list[str] = []
    original: Callable[[str], selectors.KeyHolder] = selectors._api_key_from_database

    def counted(digest: str) -> selectors.KeyHolder:
        looked_up.append(digest)
        return original(digest)

    monkeypatch.setattr(selectors, "_api_key_from_database", counted)
    return looked_up


def made_up() -> str:
    return f"sk_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"


def check(key: str) -> tuple[int, dict[str, object], str | None]:
    response = Client().post(
        PATH, '{"query": "weather"}', "application/json", headers={"x-api-key": key}
    )
    return response.status_code, response.json(), response.headers.get("Retry-After")


def test_made_up_keys_past_the_lookups_are_a_503_and_known_keys_go_on(
    search_partner: PartnerPersona,
    settings: Any,
    seconds: list[float],
    lookups: list[str],
) -> None:
    settings.OUTREACH_KEY_LOOKUPS_PER_SECOND = 2
    assert check(search_partner.key)[0] == 200  # one lookup: now known
    assert check(made_up())[0] == 401  # the second
    status, answer, retry_after = check(made_up())
    assert (status, answer, retry_after) == (
        503,
        {"error": {"code": "unavailable", "message": "The service is briefly unavailable."}},
        "1",
    )
    assert len(lookups) == 2  # the third made-up key reached no database
    for _ in range(5):
        assert check(search_partner.key)[0] == 200  # known keys are never held up
    seconds[0] += 1.0
    assert check(made_up())[0] == 401  # a second later, lookups again


def test_a_made_up_key_presented_again_costs_no_lookup(
    settings: Any, seconds: list[float], lookups: list[str]
) -> None:
    settings.OUTREACH_KEY_LOOKUPS_PER_SECOND = 1
    key = made_up()
    assert [check(key)[0] for _ in range(20)] == [401] * 20
    assert len(lookups) == 1
    assert check(made_up())[0] == 503  # the one lookup went to the first


def test_the_unknown_keys_remembered_are_bounded(
    monkeypatch: pytest.MonkeyPatch, settings: Any, lookups: list[str]
) -> None:
    settings.OUTREACH_KEY_LOOKUPS_PER_SECOND = 100
    monkeypatch.setattr(selectors, "UNKNOWN_KEYS_REMEMBERED", 3)
    keys = [made_up() for _ in range(4)]
    for key in keys:
        assert check(key)[0] == 401
    assert len(selectors.key_lookups.unknown) == 3
    assert check(keys[-1])[0] == 401
    assert len(lookups) == 4  # the newest is remembered
    assert check(keys[0])[0] == 401
    assert len(lookups) == 5  # the oldest was forgotten: looked up again


def test_a_revoked_key_is_refused_even_with_no_lookup_left(
    search_partner: PartnerPersona, settings: Any, seconds: list[float]
) -> None:
    """A key this process knew is checked again after a revocation without a lookup of the
    budget: the flood cannot keep a revoked key working, nor a valid one out."""
    settings.OUTREACH_KEY_LOOKUPS_PER_SECOND = 1
    assert check(search_partner.key)[0] == 200
    assert check(made_up())[0] == 503
    services.api_key_revoke(api_key=ApiKey.objects.get(partner=search_partner.partner))
    assert check(search_partner.key)[0] == 401


def test_lookups_come_back_at_their_rate_refused_requests_or_not(
    settings: Any, seconds: list[float]
) -> None:
    settings.OUTREACH_KEY_LOOKUPS_PER_SECOND = 1
    assert check(made_up())[0] == 401
    seconds[0] += 0.5
    status, _answer, retry_after = check(made_up())
    assert (status, retry_after) == (503, "1")
    seconds[0] += 0.5  # a second after the first lookup, the refusal between changes nothing
    assert check(made_up())[0] == 401
