"""An ASGI wrapper that removes identifying request metadata before anything can log it.

The client address, user agent, referrer and proxy forwarding headers never reach Django,
its logs or our code. This is anonymity by construction rather than by discipline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

IDENTIFYING_HEADERS = frozenset(
    {
        b"user-agent",
        b"referer",
        b"x-forwarded-for",
        b"x-real-ip",
        b"forwarded",
        b"via",
        b"true-client-ip",
        b"cf-connecting-ip",
        b"x-client-ip",
        b"x-cluster-client-ip",
        b"dnt",
        # Client hints from before the Sec-CH- names, which browsers still send when asked.
        b"device-memory",
        b"dpr",
        b"viewport-width",
        b"width",
        b"downlink",
        b"rtt",
        b"ect",
    }
)
# Every Sec-CH- client hint (device model, exact version, architecture, screen...), not only
# the three a browser sends unasked: any response can ask for the rest (a review finding).
CLIENT_HINT_PREFIX = b"sec-ch-"


def scrub_scope(scope: Scope) -> Scope:
    if scope.get("type") not in ("http", "websocket"):
        return scope
    clean = dict(scope)
    clean["client"] = None
    clean["headers"] = [
        (name, value)
        for name, value in scope.get("headers", [])
        if name.lower() not in IDENTIFYING_HEADERS
        and not name.lower().startswith(CLIENT_HINT_PREFIX)
    ]
    return clean


def anonymising(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Any, send: Any) -> None:
        await app(scrub_scope(scope), receive, send)

    return wrapped
