from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.test import override_settings

from stopcsam.core.asgi_privacy import scrub_scope
from stopcsam.core.routing import with_websockets


async def _http_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "seen", "path": scope["path"]})


def _run(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


@override_settings(STOPCSAM_WEBSOCKET_APP=None)
def test_websockets_are_closed_when_no_app_serves_them() -> None:
    app = with_websockets(_http_app)
    assert _run(app, {"type": "websocket", "path": "/ws/"}) == [
        {"type": "websocket.close", "code": 4404}
    ]
    assert _run(app, {"type": "http", "path": "/en/"}) == [{"type": "seen", "path": "/en/"}]


@override_settings(STOPCSAM_WEBSOCKET_APP="stopcsam.core.tests.test_routing._http_app")
def test_websockets_go_to_the_named_app() -> None:
    app = with_websockets(lambda *a: pytest.fail("HTTP app got a websocket"))
    assert _run(app, {"type": "websocket", "path": "/ws/chat/"}) == [
        {"type": "seen", "path": "/ws/chat/"}
    ]


def test_identifying_metadata_never_reaches_the_application() -> None:
    scope = {
        "type": "websocket",
        "client": ("203.0.113.9", 5123),
        "headers": [
            (b"user-agent", b"Agent/1"),
            (b"x-forwarded-for", b"198.51.100.1"),
            (b"referer", b"https://elsewhere.example/"),
            (b"cookie", b"sid=abc"),
            (b"origin", b"http://127.0.0.1:8000"),
        ],
    }
    clean = scrub_scope(scope)
    assert clean["client"] is None
    assert dict(clean["headers"]) == {b"cookie": b"sid=abc", b"origin": b"http://127.0.0.1:8000"}
    assert scrub_scope({"type": "lifespan"}) == {"type": "lifespan"}


def test_every_client_hint_is_removed_not_only_the_default_three() -> None:
    """The docs promise the client-hint headers are removed; only Sec-CH-UA, -Mobile and
    -Platform were. A browser sends the rest (its device model, exact version, architecture,
    memory, screen) once a response asked for them: each narrows who it is."""
    hints = [
        b"sec-ch-ua-model",
        b"sec-ch-ua-full-version-list",
        b"sec-ch-ua-platform-version",
        b"sec-ch-ua-arch",
        b"sec-ch-device-memory",
        b"sec-ch-viewport-width",
        b"device-memory",
        b"dpr",
        b"viewport-width",
    ]
    scope = {"type": "http", "headers": [(name, b"x") for name in hints] + [(b"accept", b"*/*")]}
    assert scrub_scope(scope)["headers"] == [(b"accept", b"*/*")]
