"""The deterrence API: answers, keys (isolation, revocation, rate limits), validation, counting,
and the canary: the query text reaches no table and no log line."""

from __future__ import annotations

import json
import logging

import pytest
from django.apps import apps
from django.core import serializers
from django.test import Client

from stopcsam.core.clock import now
from stopcsam.core.models import AuditEvent
from stopcsam.outreach import selectors, services
from stopcsam.outreach.models import ApiKey
from stopcsam.outreach.tests.conftest import PartnerPersona

pytestmark = pytest.mark.django_db


def _warnings(campaign: str, language: str) -> int:
    return selectors.funnel_count(
        step="warning_shown", campaign=campaign, language=language, day=now().date()
    )


def test_it_warns_on_a_listed_term_in_the_asked_language(search_partner: PartnerPersona) -> None:
    response = search_partner.post({"query": "looking for PL4CEH0LDER term alpha", "lang": "de"})
    assert response.status_code == 200
    body = response.json()
    assert body["match"] is True and body["category"] == "placeholder-a"
    assert body["lang"] == "de" and "kostenlos" in body["message"]
    assert body["help_url"] == "http://testserver/de/go/?c=search-co"


def test_without_lang_the_message_follows_the_terms_language(
    search_partner: PartnerPersona,
) -> None:
    body = search_partner.post({"query": "termo marcador epsilon"}).json()
    assert body["match"] is True and body["lang"] == "pt"


def test_it_answers_no_match_with_nulls(search_partner: PartnerPersona) -> None:
    body = search_partner.post({"query": "weather tomorrow", "lang": "es"}).json()
    assert body == {
        "match": False,
        "category": None,
        "message": None,
        "help_url": None,
        "lang": "es",
    }


def test_it_counts_warnings_per_partner_campaign_not_per_query(
    search_partner: PartnerPersona, forum_partner: PartnerPersona
) -> None:
    search_partner.post({"query": "placeholder term alpha", "lang": "en"})
    search_partner.post({"query": "placeholder term alpha", "lang": "en"})
    search_partner.post({"query": "nothing to see", "lang": "en"})
    forum_partner.post({"query": "demoword", "lang": "en"})
    assert _warnings("search-co", "en") == 2
    assert _warnings("forum-co", "en") == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer sk_nope_nope"},
        {"authorization": "Basic abc"},
        {"x-api-key": "x"},
    ],
)
def test_it_refuses_missing_or_unknown_keys(headers: dict[str, str]) -> None:
    response = Client().post(
        "/api/v1/deterrence/check",
        data='{"query": "x"}',
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


def test_it_accepts_the_key_in_x_api_key(search_partner: PartnerPersona) -> None:
    response = Client().post(
        "/api/v1/deterrence/check",
        data='{"query": "x"}',
        content_type="application/json",
        headers={"x-api-key": search_partner.key},
    )
    assert response.status_code == 200


def test_a_revoked_key_stops_working_at_once_and_is_audited(
    search_partner: PartnerPersona,
) -> None:
    assert search_partner.post({"query": "x"}).status_code == 200
    api_key = ApiKey.objects.get(partner=search_partner.partner)
    services.api_key_revoke(api_key=api_key)
    assert search_partner.post({"query": "x"}).status_code == 401
    assert AuditEvent.objects.filter(action="outreach.api_key_revoked").count() == 1
    services.api_key_revoke(api_key=api_key)  # revoking twice records nothing new
    assert AuditEvent.objects.filter(action="outreach.api_key_revoked").count() == 1


def test_keys_are_stored_only_as_digests(search_partner: PartnerPersona) -> None:
    stored = serializers.serialize("json", ApiKey.objects.all())
    assert search_partner.key not in stored
    assert search_partner.key.split("_", 2)[2] not in stored
    assert AuditEvent.objects.filter(action="outreach.api_key_created").exists()


@pytest.mark.usefixtures("one_minute")
def test_each_key_has_its_own_rate_limit(
    search_partner: PartnerPersona, forum_partner: PartnerPersona
) -> None:
    statuses = [forum_partner.post({"query": "x"}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = forum_partner.post({"query": "x"})
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert search_partner.post({"query": "x"}).status_code == 200  # isolated


@pytest.mark.usefixtures("one_minute")
def test_a_second_key_of_the_same_partner_has_its_own_budget(
    forum_partner: PartnerPersona,
) -> None:
    _api_key, other = services.api_key_create(partner=forum_partner.partner, rate_per_minute=3)
    for _ in range(4):
        forum_partner.post({"query": "x"})
    assert PartnerPersona(forum_partner.partner, other).post({"query": "x"}).status_code == 200


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ('{"query": ""}', "invalid_query"),
        ('{"query": 5}', "invalid_query"),
        ('{"lang": "de"}', "invalid_query"),
        ('{"query": "' + "x" * 1001 + '"}', "invalid_query"),
        ('{"query": "x", "lang": "fr"}', "invalid_lang"),
        ('{"query": "x", "lang": null}', "invalid_lang"),
        ('{"query": "x", "user": "1"}', "unknown_field"),
    ],
)
def test_bad_bodies_get_a_clear_json_error(
    search_partner: PartnerPersona, raw: str, code: str
) -> None:
    response = search_partner.post(None, raw=raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_an_oversized_body_is_refused(search_partner: PartnerPersona) -> None:
    response = search_partner.post(None, raw='{"query": "' + "x" * 20000 + '"}')
    assert response.status_code == 413


def test_only_post_is_allowed(search_partner: PartnerPersona) -> None:
    response = Client().get("/api/v1/deterrence/check")
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_the_api_needs_no_csrf_token(search_partner: PartnerPersona) -> None:
    client = Client(enforce_csrf_checks=True)
    assert search_partner.post({"query": "x"}, client=client).status_code == 200


def test_the_openapi_schema_is_served() -> None:
    schema = Client().get("/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    assert "/deterrence/check" in schema["paths"]
    check = schema["components"]["schemas"]["Check"]
    assert check["properties"]["query"]["maxLength"] == 1000


CANARY = "canary-query-7c1e placeholder term alpha zz-canary"


def test_the_query_text_reaches_no_table_and_no_log(
    search_partner: PartnerPersona, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    search_partner.post({"query": CANARY, "lang": "en"})
    search_partner.post(None, raw=json.dumps({"query": CANARY, "lang": "xx"}))
    search_partner.post(None, raw=json.dumps({"query": CANARY, "extra": CANARY}))
    assert _warnings("search-co", "en") == 1  # we did count
    dumped = serializers.serialize("json", [o for m in apps.get_models() for o in m.objects.all()])
    for needle in ("canary-query-7c1e", "zz-canary"):
        assert needle not in dumped
        assert needle not in caplog.text
    assert "/api/v1/deterrence/check" in caplog.text  # the access log did run
