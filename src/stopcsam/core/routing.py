"""Routes websocket connections to the lean ASGI handler named in settings; HTTP to Django.

Real-time chat does not go through Django's request cycle (see the chat issue for the measured
reason); it is a plain ASGI application that apps name in ``STOPCSAM_WEBSOCKET_APP``. Likewise
a few hot HTTP paths, named in ``STOPCSAM_HTTP_FAST_PATHS`` (exact path: dotted ASGI app),
skip Django's middleware; each such app keeps the privacy rules itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


def with_websockets(http_app: Any) -> ASGIApp:
    websocket_app: ASGIApp | None = None
    if settings.STOPCSAM_WEBSOCKET_APP:
        websocket_app = import_string(settings.STOPCSAM_WEBSOCKET_APP)

    fast_paths: dict[str, ASGIApp] = {
        path: import_string(dotted) for path, dotted in settings.STOPCSAM_HTTP_FAST_PATHS.items()
    }

    async def route(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            if websocket_app is None:
                await receive()  # the websocket.connect event
                await send({"type": "websocket.close", "code": 4404})
                return
            await websocket_app(scope, receive, send)
            return
        if scope["type"] == "http" and (fast := fast_paths.get(scope["path"])) is not None:
            await fast(scope, receive, send)
            return
        await http_app(scope, receive, send)

    return route
