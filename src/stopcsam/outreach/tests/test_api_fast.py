"""The lean ASGI deterrence endpoint answers exactly as the Django view does: the same keys,
limits, errors and messages, and counts every warning once (written about once a second)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.db import OperationalError
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
    extra: tuple[tuple[bytes, bytes], ...] = (),
    as_bytes: bool = False,
) -> tuple[int, dict[str, str], Any]:
    """One request through the project's ASGI routing, as uvicorn would make it."""
    raw = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body))
    data = raw.encode() if isinstance(raw, str) else raw
    headers = [(b"host", host.encode()), (b"content-type", b"application/json")]
    if key:
        value = f"Bearer {key}" if header == "authorization" else key
        headers.append((header.encode(), value.encode()))
    headers += extra
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
    content = body_message["body"]
    return start["status"], response_headers, content if as_bytes else json.loads(content)


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


def test_behind_a_tls_proxy_it_links_to_https_as_django_does(
    search_partner: PartnerPersona, settings: Any
) -> None:
    """The help link a partner shows must not send the visitor over plain HTTP."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    forwarded = ((b"x-forwarded-proto", b"https"),)
    _status, headers, answer = call(MATCHING, key=search_partner.key, extra=forwarded)
    view = Client().post(
        PATH,
        MATCHING,
        content_type="application/json",
        headers={
            "host": "testserver",
            "authorization": f"Bearer {search_partner.key}",
            "x-forwarded-proto": "https",
        },
    )
    assert answer == view.json()
    assert answer["help_url"] == "https://testserver/de/go/?c=search-co"
    assert headers["strict-transport-security"] == view["Strict-Transport-Security"]
    plain = ((b"x-forwarded-proto", b"http"),)
    assert call(MATCHING, key=search_partner.key, extra=plain)[2]["help_url"].startswith("http:")


def test_plain_http_is_sent_to_https_as_django_does(
    search_partner: PartnerPersona, settings: Any
) -> None:
    """The key must not go on travelling in clear text: Django answers 301, so must this."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    view = Client().post(
        PATH,
        MATCHING,
        content_type="application/json",
        headers={
            "host": "testserver",
            "authorization": f"Bearer {search_partner.key}",
            "x-forwarded-proto": "http",
        },
    )
    plain = ((b"x-forwarded-proto", b"http"),)
    status, headers, _ = call(MATCHING, key=search_partner.key, extra=plain, as_bytes=True)
    assert (status, headers["location"]) == (view.status_code, view["Location"])
    assert view["Location"] == f"https://testserver{PATH}"
    assert (
        call(MATCHING, key=search_partner.key, extra=((b"x-forwarded-proto", b"https"),))[0] == 200
    )


def test_a_malformed_host_is_refused_as_django_does(
    search_partner: PartnerPersona, settings: Any
) -> None:
    """Even when every host is allowed, a Host that is no host name never reaches the link."""
    settings.ALLOWED_HOSTS = ["*"]
    view = Client(raise_request_exception=False).post(
        PATH,
        MATCHING,
        content_type="application/json",
        headers={"host": "evil.example/x?", "authorization": f"Bearer {search_partner.key}"},
    )
    assert view.status_code == 400
    assert call(MATCHING, key=search_partner.key, host="evil.example/x?")[0] == 400
    assert call(MATCHING, key=search_partner.key, host="")[0] == 400


def test_with_the_database_away_both_answer_a_json_503(
    search_partner: PartnerPersona, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partner's client reads JSON errors; uvicorn's bare text 500 told it nothing."""

    def away(digest: str) -> None:
        raise OperationalError("database is locked")

    monkeypatch.setattr(selectors, "_api_key_from_database", away)
    status, headers, answer = call(MATCHING, key=search_partner.key)
    view = search_partner.post(MATCHING, client=Client(raise_request_exception=False))
    assert (status, answer) == (view.status_code, view.json()) == (503, answer)
    assert answer["error"]["code"] == "unavailable"
    assert headers["retry-after"] == view["Retry-After"]


def test_a_header_sent_twice_is_read_as_django_reads_it(search_partner: PartnerPersona) -> None:
    """Django joins repeated headers with a comma, so two keys are no key (401); this endpoint
    took the last one and answered 200 where the view refused."""
    second = ((b"authorization", f"Bearer {search_partner.key}".encode()),)
    status, _headers, answer = call(MATCHING, key=search_partner.key, extra=second)
    view = Client().post(
        PATH,
        MATCHING,
        content_type="application/json",
        headers={"authorization": f"Bearer {search_partner.key},Bearer {search_partner.key}"},
    )
    assert (status, answer) == (view.status_code, view.json()) == (401, answer)


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


def test_a_process_that_ends_normally_writes_what_is_pending(tmp_path: Any) -> None:
    """Only SIGKILL may lose the last second's counts (docs/deterrence.md): a graceful stop
    (uvicorn on SIGTERM, a restart) ended with the timer's daemon thread and lost them."""
    import os
    import subprocess
    import sys

    script = (
        "import django; django.setup()\n"
        "from stopcsam.outreach import api_fast, services\n"
        "services.funnel_increment = lambda **kw: print('written', kw['campaign'], kw['amount'])\n"
        "api_fast.FLUSH_SECONDS = 3600\n"
        "api_fast.pending.add('search-co', 'de'); api_fast.pending.add('search-co', 'de')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "stopcsam.settings_test"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "written search-co 2"
