from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from stopcsam.core import clock
from stopcsam.outreach import api_fast, selectors, services
from stopcsam.outreach.models import Partner
from stopcsam.outreach.terms import forget_current_matcher


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    """Each test starts with an empty cache (rate buckets), all its key lookups and no key
    remembered as unknown, and rebuilds the matcher."""
    cache.clear()
    selectors.key_lookups.forget()
    forget_current_matcher()
    api_fast.pending.discard()
    yield
    api_fast.pending.discard()
    forget_current_matcher()


@pytest.fixture
def one_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rate budgets are per clock minute: a test that spends one must not straddle two (CI
    once saw a fourth request pass because the minute turned between the second and third)."""
    fixed = timezone.now().replace(second=30, microsecond=0)
    monkeypatch.setattr(clock, "now", lambda: fixed)


@dataclass
class PartnerPersona:
    partner: Partner
    key: str

    def post(self, body: object, *, client: Client | None = None, raw: str | None = None):  # type: ignore[no-untyped-def]
        import json

        return (client or Client()).post(
            "/api/v1/deterrence/check",
            data=raw if raw is not None else json.dumps(body),
            content_type="application/json",
            headers={"authorization": f"Bearer {self.key}"},
        )


@pytest.fixture
def search_partner(db: None) -> PartnerPersona:
    partner = services.partner_create(name="Search Co", campaign_code="search-co")
    _api_key, key = services.api_key_create(partner=partner, rate_per_minute=1000)
    return PartnerPersona(partner, key)


@pytest.fixture
def forum_partner(db: None) -> PartnerPersona:
    partner = services.partner_create(name="Forum Co", campaign_code="forum-co")
    _api_key, key = services.api_key_create(partner=partner, rate_per_minute=3)
    return PartnerPersona(partner, key)
