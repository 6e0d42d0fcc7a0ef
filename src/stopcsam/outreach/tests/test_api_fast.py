"""The lean ASGI deterrence endpoint answers exactly as the Django view does: the same keys,
limits, errors and messages, and counts every warning once (written about once a second)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import Client

from stopcsam.core.clock import now
from stopcsam.core.routing import with_websockets
from stopcsam.outreach import api_fast, selectors, services
from stopcsam.outreach.models import ApiKey
from stopcsam.outreach.tests.conftest import PartnerPersona

pytestmark = pytest.mark.django_db(transaction=True)
PATH = "/api/v1/deterrence/check"
MATCHING = {"query": "looking for PL4CEH0LDER term alpha", "lang": "de"}


def call(
    body: bytes | str | dict[str, Any],
    *,
    key: str = "",
    method: str = "POST",
    host: str = "testserver",
    header: str = "authorization",
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """One request through the project's ASGI routing, as uvicorn would make it."""
    raw = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body))
    data = raw.encode() if isinstance(raw, str) else raw
    headers = [(b"host", host.encode()), (b"content-type", b"application/json")]
    if key:
        value = f"Bearer {key}" if header == "authorization" else key
        headers.append((header.encode(), value.encode()))
    scope = {
        "type": "http",
        "method": method,
        "path": PATH,
        "headers": headers,
        "scheme": "http",
        "query_string": b"",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": data, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(with_websockets(ASGIHandler())(scope, receive, send))
    start, body_message = sent
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], response_headers, json.loads(body_message["body"])


def django_view(partner: PartnerPersona, body: dict[str, Any]) -> dict[str, Any]:
    return partner.post(body).json()  # type: ignore[no-any-return]


def _warnings(campaign: str, language: str) -> int:
    return selectors.funnel_count(
        step="warning_shown", campaign=campaign, language=language, day=now().date()
    )


def test_it_answers_as_the_django_view_does(search_partner: PartnerPersona) -> None:
    for body in (MATCHING, {"query": "weather tomorrow"}, {"query": "x", "lang": "xx"}, {}):
        _status, headers, answer = call(body, key=search_partner.key)
        assert answer == django_view(search_partner, body)
        assert headers["cache-control"] == "no-store"
        assert headers["content-type"] == "application/json"
    assert call(MATCHING, key=search_partner.key)[2]["help_url"] == (
        "http://testserver/de/go/?c=search-co"
    )


@pytest.mark.usefixtures("one_minute")
def test_keys_errors_and_limits(search_partner: PartnerPersona, forum_partner: PartnerPersona):
    assert call(MATCHING)[0] == 401
    assert call(MATCHING, key="sk_" + "0" * 40)[0] == 401
    assert call(MATCHING, key=search_partner.key, header="x-api-key")[0] == 200
    assert call(MATCHING, key=search_partner.key, method="GET")[:2][0] == 405
    assert call(b"{not json", key=search_partner.key)[2]["error"]["code"] == "invalid_json"
    too_big = json.dumps({"query": "a" * 20_000}).encode()
    assert call(too_big, key=search_partner.key)[0] == 413
    assert call(MATCHING, key=search_partner.key, host="evil.example")[0] == 400
    statuses = [call(MATCHING, key=forum_partner.key)[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]  # the forum's own budget of 3 a minute
    assert call(MATCHING, key=search_partner.key)[0] == 200  # another partner is unaffected


def test_a_revoked_key_is_refused_at_once(search_partner: PartnerPersona) -> None:
    assert call(MATCHING, key=search_partner.key)[0] == 200  # now known to this process
    services.api_key_revoke(api_key=ApiKey.objects.get(partner=search_partner.partner))
    assert call(MATCHING, key=search_partner.key)[0] == 401


def test_each_warning_is_counted_once(search_partner: PartnerPersona) -> None:
    before = _warnings("search-co", "de")
    for _ in range(7):
        call(MATCHING, key=search_partner.key)
    call({"query": "weather tomorrow", "lang": "de"}, key=search_partner.key)
    api_fast.pending.flush()
    assert _warnings("search-co", "de") == before + 7
    api_fast.pending.flush()  # nothing pending: nothing added twice
    assert _warnings("search-co", "de") == before + 7


def test_the_query_reaches_no_log(
    search_partner: PartnerPersona, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    call({"query": "canary-9f3a PL4CEH0LDER term alpha"}, key=search_partner.key)
    api_fast.pending.flush()
    assert f"POST {PATH} 200" in caplog.text
    assert "canary-9f3a" not in caplog.text
    assert Client().get("/api/v1/openapi.json").status_code == 200  # Django still serves the rest
