"""A cap on request bodies before Django reads any of them: nginx's ``client_max_body_size``
for a server that runs without nginx (the embedded default, or uvicorn reached directly).

Everything the service takes is text: a chat message, a form, a questionnaire. Without the
cap, Django took a multipart body of any declared size and wrote its file parts to a
temporary file on disk (a review finding); a chunked body of no declared length went to the
thread pool's reader whole. A body declared larger than ``STOPCSAM_MAX_BODY_BYTES`` is refused
before it is read, and one of no declared length is read up to the cap only. The refusal is
a 413 page in the language of the address (``/de/...``), with the quick exit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import get_language_from_path

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
Message = dict[str, Any]
CSP = (
    b"default-src 'none'; script-src 'self'; base-uri 'none'; form-action 'none';"
    b" frame-ancestors 'none'"
)


def capped(app: Any) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        limit = settings.STOPCSAM_MAX_BODY_BYTES
        declared = _declared_length(scope)
        if declared is not None:
            # The server reads no more than the declared length (HTTP/1.1 framing).
            if declared > limit:
                await _too_large(scope, send)
            else:
                await app(scope, receive, send)
            return
        body = await _read_up_to(receive, limit)
        if body is None:
            await _too_large(scope, send)
            return
        if body is _GONE:
            return
        await app(scope, _replaying(body, receive), send)

    return wrapped


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length, or None if there is none; one that is not a number counts as too
    large (the server would refuse it anyway)."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else 1 << 62
    return None


_GONE = b"gone"  # the client left before its body was read (compared by identity)


async def _read_up_to(receive: Any, limit: int) -> bytes | None:
    """The whole body if it is at most ``limit`` bytes; None once it is longer."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _GONE
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Any) -> Callable[[], Awaitable[Message]]:
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()  # whatever comes next: a disconnect
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _too_large(scope: Scope, send: Any) -> None:
    language = get_language_from_path(scope.get("path", "")) or settings.LANGUAGE_CODE
    with translation.override(language):
        page = render_to_string("core/too_large.html", {"LANGUAGE_CODE": language})
    content = page.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(content)).encode()),
                (b"cache-control", b"no-store"),
                (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"no-referrer"),
                (b"x-frame-options", b"DENY"),
                (b"content-security-policy", CSP),
                (b"connection", b"close"),  # the unread body cannot be skipped
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
