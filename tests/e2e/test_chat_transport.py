"""The chat's websocket transport as `stopcsam serve` configures it, on a real server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.test_chat_fault import COUNT, SETUP
from tests.server import run_in_own_loop, running_server


def test_frame_sizes_are_bounded_before_the_chat_reads_them(tmp_path: Path) -> None:
    """A frame a little over the protocol's limit gets the protocol's error and the connection
    lives on; a frame far over it is refused by the transport (1009) before it is buffered."""
    with running_server(tmp_path) as server:
        (item,) = server.shell_json(SETUP.replace("PAIRS", "1"))
        host = server.url.removeprefix("http://")
        url = f"ws://{host}/ws/chat/{item['public_id']}"
        headers = {"Cookie": f"sid={item['p']}", "Origin": server.url}

        async def frames_until(ws: ClientConnection, frame_type: str) -> dict[str, Any]:
            while True:
                frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if frame["type"] == frame_type:
                    return frame

        async def scenario() -> int | None:
            async with connect(url, additional_headers=headers, max_size=None) as ws:
                await ws.send(json.dumps({"type": "hello", "after": 0}))
                await frames_until(ws, "caught_up")
                send = {"type": "send", "client_id": "c-big-1", "body": "x" * 20_000}
                await ws.send(json.dumps(send))
                assert (await frames_until(ws, "error"))["code"] == "too_large"
                await ws.send(json.dumps({"type": "ping"}))
                await frames_until(ws, "pong")
                send = {"type": "send", "client_id": "c-big-2", "body": "x" * 200_000}
                await ws.send(json.dumps(send))
                try:
                    await frames_until(ws, "never")
                except ConnectionClosed as closed:
                    return closed.rcvd.code if closed.rcvd else None
            return None

        assert run_in_own_loop(scenario()) == 1009
        assert server.shell_json(COUNT) == []  # nothing was stored
