"""Every URL of the site, as each kind of visitor (anonymous, participant, therapist,
supervisor, coordinator), with bad values in every form field we use and in every path
parameter: never a 500 nor an exception (a security review's fuzzer; it found the 500s of
non-ASCII digits). Not hypothesis: the same fixed set of nasty values everywhere, so that a
failure names its URL, visitor and value and is repeated exactly."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from stopcsam.study.demo import demo_definition
from stopcsam.study.services import protocol_load

BAD = [
    "\x00",
    "a" * 200_000,
    "9" * 400,
    "-1",
    "1e309",
    "<script>x</script>",
    "../../etc/passwd",
    "2026-13-45",
    "99999-01-01",
    "NaN",
    "\u202e",
]
FIELDS = [
    "body",
    "buffer_minutes",
    "choice",
    "client_id",
    "codename",
    "colleague",
    "confirm",
    "end_time",
    "include_free_text",
    "kind",
    "language",
    "max_caseload",
    "max_per_day",
    "max_per_week",
    "otp_token",
    "password",
    "qualified",
    "rating",
    "reason",
    "risk_level",
    "risk_notes",
    "scope",
    "start_time",
    "starts",
    "therapist",
    "time_zone",
    "tz",
    "username",
    "weekday",
    "action",
    "auto",
    "escalation",
    "start",
    "date",
    "first",
    "time",
    "day",
    "slot",
    "before",
    "after",
    "week",
    "key",
    "next",
    "r",
    "c",
    "free_text",
    "shared",
    "lang",
    "write",
    "age",
    "recent_use",
    "in_treatment",
    "consent",
    "answer",
    "item",
    "fmt",
    "page",
    "old_password",
    "new_password1",
    "new_password2",
    "password1",
    "password2",
    "notice",
    "rest",
    "q",
    "query",
]


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def _concrete(route: str) -> list[str]:
    import re

    route = route.replace("^", "").replace("$", "")
    if route.startswith("admin/"):
        return []
    outs = []
    for value in ("1", "x" * 40, "99999999999999999999999", "abc%00", "%ED%A0%80"):
        r = re.sub(r"<(?:\w+:)?\w+>", value, route)
        outs.append("/" + r.lstrip("/"))
    return sorted(set(outs))


def _urls() -> list[str]:
    out = []
    for route in _walk(get_resolver().url_patterns):
        for u in _concrete(route):
            if (
                not u.startswith("/en/")
                and not u.startswith("/api")
                and u not in ("/healthz", "/favicon.ico")
            ):
                u = "/en" + u
            out.append(u)
    return sorted(set(out))


def _check(client: Client, method: str, url: str, **kw):
    try:
        resp = getattr(client, method)(url, **kw)
    except Exception as exc:
        return f"{method.upper()} {url[:120]} -> {type(exc).__name__}: {str(exc)[:200]}"
    if resp.status_code >= 500:
        return f"{method.upper()} {url[:120]} -> {resp.status_code}"
    return None


@pytest.fixture
def quiet_request_log() -> Iterator[None]:
    """Django logs each 4xx with the request attached to the record, and pytest keeps every
    record of a test: thousands of requests kept alive took the run to 5 GB (8.8 GB on
    PostgreSQL). A 500 still fails the test by its status code."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@pytest.mark.django_db(transaction=False)
@pytest.mark.usefixtures("quiet_request_log")
def test_fuzz_all(
    participant, therapist, supervisor, coordinator, participant_client, staff_client
):
    protocol_load(definition=demo_definition())
    clients = {
        "anon": Client(),
        "participant": participant_client(participant),
        "therapist": staff_client(therapist),
        "supervisor": staff_client(supervisor),
        "coordinator": staff_client(coordinator),
    }
    failures = []
    urls = _urls()
    for name, client in clients.items():
        for url in urls:
            for bad in BAD:
                query = {f: bad[:5000] for f in FIELDS}
                for m, kw in (
                    ("get", {"data": query}),
                    ("post", {"data": {f: bad for f in FIELDS}}),
                    ("put", {}),
                    ("delete", {}),
                ):
                    if m in ("put", "delete") and bad != BAD[0]:
                        continue
                    f = _check(client, m, url, **kw)
                    if f:
                        failures.append(f"{name}: {f} with {bad[:20]!r}")
            # invalid utf-8 body
            f = _check(
                client,
                "post",
                url,
                data=b"body=%ED%A0%80&codename=\xff\xfe",
                content_type="application/x-www-form-urlencoded",
            )
            if f:
                failures.append(f"{name}: rawbody {f}")
    print("\n".join(sorted(set(failures))))
    assert not failures, f"{len(failures)} failures"
