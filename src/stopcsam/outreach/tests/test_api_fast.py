"""The lean ASGI deterrence endpoint answers exactly as the Django view does: the same keys,
limits, errors and messages, and counts every warning once (written about once a second)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from django.core.cache import cache
from django.core.handlers.asgi import ASGIHandler
from django.db import OperationalError
from django.test import Client

from stopcsam.core.clock import now
from stopcsam.core.routing import with_websockets
from stopcsam.outreach import api_fast, selectors, services
from stopcsam.outreach.models import ApiKey, Campaign
from stopcsam.outreach.terms import forget_current_matcher
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
    asked: list[bool] = []

    async def receive() -> dict[str, Any]:
        if asked:  # the body was read: the client stays until answered (Django listens)
            await asyncio.get_running_loop().create_future()
        asked.append(True)
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
        assert headers["cache-control"] == "no-store, private"  # as the view's
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


# Headers that are no matter of security: the view's LocaleMiddleware says which language it
# negotiated for pages (the API answers in the body's "lang"), and varies on it.
NOT_SECURITY = {"content-language", "vary"}


def _security(headers: dict[str, str]) -> dict[str, str]:
    lowered = {name.lower(): value for name, value in headers.items()}
    return {name: value for name, value in lowered.items() if name not in NOT_SECURITY}


@pytest.mark.usefixtures("one_minute")
def test_it_sends_every_header_the_django_view_sends(
    search_partner: PartnerPersona, forum_partner: PartnerPersona, settings: Any
) -> None:
    """Past Django's middleware, its answers went out without X-Frame-Options, the CSP and
    Cross-Origin-Opener-Policy. Both paths answer the same requests, success and errors, and
    every header is compared, so a header added to one cannot be missing from the other."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    tls = ((b"x-forwarded-proto", b"https"),)
    requests: list[dict[str, Any]] = [
        {"body": MATCHING, "key": search_partner.key},
        {"body": {"query": "weather tomorrow"}, "key": search_partner.key, "extra": tls},
        {"body": MATCHING},  # 401
        {"body": b"{not json", "key": search_partner.key},  # 400
        {"body": MATCHING, "key": search_partner.key, "method": "GET"},  # 405
        {"body": json.dumps({"query": "a" * 20_000}).encode(), "key": search_partner.key},
        *[{"body": MATCHING, "key": forum_partner.key}] * 4,  # the last one 429
    ]
    fast = [call(as_bytes=True, **request) for request in requests]
    settings.STOPCSAM_HTTP_FAST_PATHS = {}  # the same requests through Django's middleware
    api_fast.pending.discard()
    cache.clear()  # the rate budgets again
    view = [call(as_bytes=True, **request) for request in requests]
    assert [status for status, _, _ in fast] == [200, 200, 401, 400, 405, 413, 200, 200, 200, 429]
    assert [(status, _security(headers)) for status, headers, _ in fast] == [
        (status, _security(headers)) for status, headers, _ in view
    ]
    assert fast[0][1]["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in fast[0][1]["content-security-policy"]
    assert fast[0][1]["cross-origin-opener-policy"] == "same-origin"


def test_an_inactive_campaign_counts_its_warnings_as_no_campaign(
    search_partner: PartnerPersona,
) -> None:
    """An inactive campaign is an unknown one on the front door (its help clicks count as no
    campaign); its API warnings went on being counted under its code, on both paths."""
    Campaign.objects.filter(code="search-co").update(active=False)
    assert call(MATCHING, key=search_partner.key)[2]["match"] is True  # still warned
    api_fast.pending.flush()
    assert search_partner.post(MATCHING).json()["match"] is True
    Client().get("/de/go/?c=search-co")
    assert _warnings("search-co", "de") == 0
    assert _warnings("", "de") == 2
    assert selectors.funnel_count(step="help_click", language="de", day=now().date()) == 1
    Campaign.objects.filter(code="search-co").update(active=True)
    call(MATCHING, key=search_partner.key)
    api_fast.pending.flush()
    assert _warnings("search-co", "de") == 1


@pytest.mark.usefixtures("one_minute")
def test_a_request_that_meets_stale_term_lists_spends_its_budget_once(
    forum_partner: PartnerPersona, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried on the event loop, the check spent and then met the database (the term lists went
    stale meanwhile); tried again in a thread, it spent again: a budget of 3 gave 2."""
    assert call(MATCHING, key=forum_partner.key)[0] == 200  # the key is known now
    monkeypatch.setattr(api_fast, "matcher_is_fresh", lambda: True)
    statuses = []
    for _ in range(3):
        forget_current_matcher()  # stale by the time the check matches
        statuses.append(call(MATCHING, key=forum_partner.key)[0])
    assert statuses == [200, 200, 429]


def test_made_up_keys_take_no_thread_and_no_lookup_past_the_budget(
    search_partner: PartnerPersona, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of made-up keys: each took a thread hop and a database lookup. A key refused
    once is refused on the event loop, and past the process's lookups a new one is a 503
    there too, however stale the term lists are (only a valid key's answer checks them)."""
    settings.OUTREACH_KEY_LOOKUPS_PER_SECOND = 2
    monkeypatch.setattr(selectors.key_lookups, "clock", lambda: 1000.0)
    monkeypatch.setattr(api_fast, "matcher_is_fresh", lambda: False)
    hops: list[object] = []
    in_thread = api_fast._in_thread

    def counted(check: Any) -> Any:
        hops.append(check)
        return in_thread(check)

    monkeypatch.setattr(api_fast, "_in_thread", counted)
    made_up = "sk_" + "0" * 40

    assert call(MATCHING, key=search_partner.key)[0] == 200  # one lookup: now known
    assert call(MATCHING, key=made_up)[0] == 401  # the second, in a thread
    assert len(hops) == 2
    assert call(MATCHING, key=made_up)[0] == 401
    status, headers, answer = call(MATCHING, key="sk_" + "1" * 40)
    assert (status, answer["error"]["code"], headers["retry-after"]) == (503, "unavailable", "1")
    assert len(hops) == 2  # neither took a thread
    assert call(MATCHING, key=search_partner.key)[0] == 200  # a known key goes on
