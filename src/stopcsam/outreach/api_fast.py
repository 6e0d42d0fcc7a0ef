"""The deterrence check as a lean ASGI endpoint beside Django, for partner traffic.

Partners call ``POST /api/v1/deterrence/check`` for every search, so it is the one HTTP path
that must carry thousands of requests a second. Through Django's request cycle (a dozen
middleware, the WSGI thread pool) it managed about 950 requests/s with p99 130 ms under 64
clients on this 2-core machine (bench/deterrence.py). This endpoint runs the very same
``api.check_response`` straight on the event loop whenever it needs no database: the key is
known to this process and the term lists were checked within the last second, or the key is
refused from memory (see ``selectors.api_key_holder``). Otherwise it runs in a thread, where
the ORM may block.

Matches are counted in memory and written to the funnel counters about once a second, in
one update per (day, campaign, language), and once more when the process ends. A process
killed with SIGKILL loses at most that second's counts, never a query: queries are never
stored anywhere.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import MutableMapping
from datetime import date
from typing import Any

from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation
from django.core.signals import setting_changed
from django.db import close_old_connections, connections
from django.http.request import split_domain_port, validate_host
from django.utils.csp import CSP, build_policy

from stopcsam.core import clock
from stopcsam.outreach import api, selectors, services
from stopcsam.outreach.exceptions import InvalidApiKeyError, KeyLookupsSpentError
from stopcsam.outreach.terms import matcher_is_fresh

access_log = logging.getLogger("stopcsam.access")
log = logging.getLogger("stopcsam.outreach")
PATH = "/api/v1/deterrence/check"
FLUSH_SECONDS = 1.0
HEADERS = [(b"content-type", b"application/json")]


@functools.cache
def security_headers() -> tuple[tuple[bytes, bytes], ...]:
    """The headers Django's middleware put on the view's every answer, from the same settings:
    this endpoint skips that middleware, and its answers went out without X-Frame-Options,
    the CSP and Cross-Origin-Opener-Policy (a review finding). HSTS depends on the request's
    scheme and is added per request (``_hsts``). Kept until a setting changes."""
    found: dict[str, str] = {
        # PrivacyHeadersMiddleware: no answer of ours is kept in a cache.
        "cache-control": "no-store, private",
        # XFrameOptionsMiddleware
        "x-frame-options": str(getattr(settings, "X_FRAME_OPTIONS", "DENY")).upper(),
    }
    # SecurityMiddleware
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        found["x-content-type-options"] = "nosniff"
    if policy := settings.SECURE_REFERRER_POLICY:
        parts = policy.split(",") if isinstance(policy, str) else policy
        found["referrer-policy"] = ",".join(part.strip() for part in parts)
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        found["cross-origin-opener-policy"] = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
    # ContentSecurityPolicyMiddleware (no nonce: a JSON answer never uses one)
    for header, config in (
        (CSP.HEADER_ENFORCE, settings.SECURE_CSP),
        (CSP.HEADER_REPORT_ONLY, settings.SECURE_CSP_REPORT_ONLY),
    ):
        if config:
            found[str(header).lower()] = build_policy(config)
    return tuple((name.encode(), value.encode("latin-1")) for name, value in found.items())


def _settings_changed(**_: Any) -> None:
    security_headers.cache_clear()


setting_changed.connect(_settings_changed)


class _PendingCounts:
    """Warnings shown, per (day, campaign, language), until the next write."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[tuple[date, str, str]] = Counter()
        self.timer: threading.Timer | None = None

    def add(self, campaign: str, language: str) -> None:
        with self.lock:
            self.counts[(clock.now().date(), campaign, language)] += 1
            if self.timer is None:
                self.timer = threading.Timer(FLUSH_SECONDS, self.flush)
                self.timer.daemon = True
                self.timer.start()

    def discard(self) -> None:
        """Forget what is pending (tests: no write may outlive the test that caused it)."""
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
            self.counts, self.timer = Counter(), None

    def flush(self) -> None:
        with self.lock:
            counts, self.counts, self.timer = self.counts, Counter(), None
        try:
            for (day, campaign, language), amount in counts.items():
                services.funnel_increment(
                    step="warning_shown",
                    campaign=campaign,
                    language=language,
                    day=day,
                    amount=amount,
                )
        except Exception:
            # Counting must never take the API down; the loss is logged, never the queries.
            log.exception("could not write %s funnel counts", sum(counts.values()))
        finally:
            connections.close_all()


pending = _PendingCounts()
# A process that ends normally (uvicorn's graceful stop on SIGTERM, a restart) writes what is
# pending: the timer's thread is a daemon and died with it. Only SIGKILL loses that second.
atexit.register(pending.flush)


async def endpoint(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    started = time.perf_counter()
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        # A header sent twice is joined with a comma, as Django (and a2wsgi) read it: two
        # keys are no key, not the last one.
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    body = await _body(receive) if scope["method"] == "POST" else b""
    host = headers.get("host", "")
    domain = split_domain_port(host)[0]  # "" when the Host is no host name at all
    if not (domain and validate_host(domain, settings.ALLOWED_HOSTS)):  # as Django's get_host
        status, payload, extra = api._error(400, "bad_host", "Unknown host.")
    elif (scheme := _scheme(scope, headers)) != "https" and _ssl_redirect():
        # As Django's SecurityMiddleware: plain HTTP is sent to HTTPS, with no body.
        query = scope.get("query_string", b"").decode("latin-1")
        location = f"https://{settings.SECURE_SSL_HOST or host}{PATH}{'?' if query else ''}{query}"
        status, payload, extra = 301, {}, {"Location": location}
    else:
        status, payload, extra = await _check(scope["method"], headers, body, f"{scheme}://{host}")
        if scheme == "https" and settings.SECURE_HSTS_SECONDS:
            extra["Strict-Transport-Security"] = _hsts()
    content = json.dumps(payload).encode() if payload else b""
    response_headers = [*HEADERS, *security_headers()]
    response_headers.append((b"content-length", str(len(content)).encode()))
    response_headers += [(name.lower().encode(), value.encode()) for name, value in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": content})
    elapsed_ms = (time.perf_counter() - started) * 1000
    access_log.info("%s %s %s %.1fms", scope["method"], PATH, status, elapsed_ms)


def _scheme(scope: MutableMapping[str, Any], headers: dict[str, str]) -> str:
    """As Django's ``request.scheme``: behind a TLS proxy (SECURE_PROXY_SSL_HEADER) the proxy's
    header says, or the help link would send the visitor over plain HTTP."""
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        forwarded = headers.get(meta_name.removeprefix("HTTP_").replace("_", "-").lower())
        if forwarded is not None:
            return "https" if forwarded.split(",", 1)[0].strip() == secure_value else "http"
    return str(scope.get("scheme", "http"))


def _ssl_redirect() -> bool:
    return settings.SECURE_SSL_REDIRECT and not any(
        re.search(exempt, PATH.lstrip("/")) for exempt in settings.SECURE_REDIRECT_EXEMPT
    )


def _hsts() -> str:
    """The header Django's SecurityMiddleware sends on secure requests."""
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return value


async def _body(receive: Any) -> bytes | None:
    """The request body, or None once it exceeds the limit (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > api.BODY_MAX_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _check(
    method: str, headers: dict[str, str], body: bytes | None, base_url: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    key = api.presented_key(headers.get("authorization", ""), headers.get("x-api-key", ""))
    # One budget for both tries: a try on the event loop may spend and then meet the database
    # (the term lists went stale meanwhile); the try in a thread spent again (a review finding).
    budget = api.RequestBudget()

    def check() -> tuple[int, dict[str, Any], dict[str, str]]:
        return api.check_response(
            method=method, key=key, body=body, base_url=base_url, count=pending.add, budget=budget
        )

    if matcher_is_fresh() or _refused_from_memory(key):
        try:
            return check()
        except SynchronousOnlyOperation:
            pass  # an unknown key or stale term lists: the database is needed
    return await asyncio.to_thread(_in_thread, check)


def _refused_from_memory(key: str) -> bool:
    """Whether the key is refused without the database (malformed, known to be unknown, or no
    lookup left): the answer then needs neither the term lists nor a thread. Only a valid
    key's answer checks the term lists, so in a flood of made-up keys they were never fresh,
    and each made-up key took a thread (a review finding)."""
    try:
        selectors.api_key_holder(key=key)
    except (InvalidApiKeyError, KeyLookupsSpentError):
        return True
    except Exception:
        # A lookup (given back: the ORM refuses on the event loop), or an error that
        # check_response answers (the database away) in the thread.
        return False
    return False


def _in_thread(check: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    close_old_connections()
    return check()
