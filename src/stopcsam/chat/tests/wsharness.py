"""A small in-process ASGI websocket driver: the real socket application, no server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from stopcsam.chat.protocol import SERVER_FRAMES, conforms
from stopcsam.chat.sockets import application

ORIGIN = "http://testserver"


def path(session: Any) -> str:
    """The websocket path of a chat session."""
    return f"/ws/chat/{session.public_id}"


class Socket:
    def __init__(self, path: str, *, cookie: str = "", origin: str = ORIGIN) -> None:
        headers = [(b"host", b"testserver"), (b"cookie", cookie.encode())]
        if origin:
            headers.append((b"origin", origin.encode()))
        self.scope = {"type": "websocket", "path": path, "headers": headers, "query_string": b""}
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.close_code: int | None = None

    async def connect(self) -> bool:
        self.task = asyncio.create_task(application(self.scope, self.to_app.get, self.from_app.put))
        await self.to_app.put({"type": "websocket.connect"})
        first = await asyncio.wait_for(self.from_app.get(), 5)
        if first["type"] == "websocket.close":
            self.close_code = first["code"]
            return False
        return first["type"] == "websocket.accept"

    async def send(self, frame: dict[str, Any] | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self.to_app.put({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self.to_app.put({"type": "websocket.receive", "bytes": data})

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        event = await asyncio.wait_for(self.from_app.get(), timeout)
        if event["type"] == "websocket.close":
            self.close_code = event["code"]
            return {"type": "__closed__", "code": event["code"]}
        frame = json.loads(event["text"])
        assert conforms(frame, SERVER_FRAMES), frame  # every frame the server sends has a schema
        return frame

    async def until(self, frame_type: str, timeout: float = 5) -> dict[str, Any]:
        """Frames up to and including the first of this type; return that one."""
        while True:
            frame = await self.receive(timeout)
            if frame["type"] == frame_type:
                return frame

    async def collect(
        self, frame_type: str, count: int, timeout: float = 5
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while len(found) < count:
            frame = await self.receive(timeout)
            if frame["type"] == frame_type:
                found.append(frame)
        return found

    async def close(self) -> None:
        await self.to_app.put({"type": "websocket.disconnect", "code": 1000})
        if self.task is not None:
            await asyncio.wait_for(self.task, 5)
