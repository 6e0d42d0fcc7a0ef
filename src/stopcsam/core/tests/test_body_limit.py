"""Request bodies are capped before Django reads them (core.asgi_limits), as nginx does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory, override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from stopcsam.core.asgi_limits import capped

LIMIT = 1024


def _run(
    body_parts: list[bytes], headers: list[tuple[bytes, bytes]], path: str = "/de/login/"
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Send a request through the cap to an app that reads the whole body; what the client
    got, and what the app read (nothing if it was never called)."""
    read: list[bytes] = []
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(body_parts) - 1}
        for i, part in enumerate(body_parts)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            read.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"taken"})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    with override_settings(STOPCSAM_MAX_BODY_BYTES=LIMIT):
        asyncio.run(capped(app)(scope, receive, send))
    return sent, read


def test_a_body_declared_too_large_is_refused_before_it_is_read() -> None:
    sent, read = _run([b"x" * 10], [(b"content-length", str(LIMIT + 1).encode())])
    assert sent[0]["status"] == 413 and read == []
    page = sent[1]["body"].decode()
    assert 'lang="de"' in page and "Es wurde zu viel gesendet" in page  # the address's language
    assert 'id="quick-exit"' in page
    headers = dict(sent[0]["headers"])
    assert headers[b"cache-control"] == b"no-store" and b"content-security-policy" in headers


def test_a_content_length_that_is_not_a_number_is_refused() -> None:
    sent, read = _run([b"x"], [(b"content-length", b"1e9")])
    assert sent[0]["status"] == 413 and read == []


def test_a_body_of_no_declared_length_is_read_up_to_the_cap_only() -> None:
    sent, read = _run([b"x" * 600, b"x" * 600, b"x" * 10**6], [])
    assert sent[0]["status"] == 413 and read == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=400), min_size=1, max_size=6), st.booleans())
def test_a_body_within_the_cap_reaches_the_app_whole(parts: list[bytes], declared: bool) -> None:
    body = b"".join(parts)
    headers = [(b"content-length", str(len(body)).encode())] if declared else []
    sent, read = _run(parts, headers)
    if len(body) <= LIMIT:
        assert sent[0]["status"] == 200 and b"".join(read) == body
    else:
        assert sent[0]["status"] == 413 and read == []


def test_other_traffic_passes_untouched() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    asyncio.run(capped(app)({"type": "lifespan"}, None, None))
    asyncio.run(capped(app)({"type": "websocket", "headers": []}, None, None))
    assert seen == ["lifespan", "websocket"]


@pytest.mark.django_db
def test_a_file_part_of_a_form_is_never_taken() -> None:
    """No upload path exists: a file sent with a form is dropped, never held or stored; the
    form's text still reads, and no page fails on it."""
    upload = SimpleUploadedFile("notes.txt", b"I am worried about my urges")
    request = RequestFactory().post("/en/", {"note": "text", "file": upload})
    assert len(request.FILES) == 0 and request.POST["note"] == "text"
    assert Client().post("/en/login/", {"file": upload}).status_code != 500
