"""The websocket frame protocol (docs/chat-protocol.md): one schema per frame type.

Frames are JSON objects with a ``type``. A schema names every field, its type and whether it
may be null; a frame with a missing, extra or mistyped field is refused. The tests check every
frame the server sends against ``SERVER_FRAMES``.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

Field = tuple[type | tuple[type, ...], bool]  # (accepted types, nullable)
Schema = dict[str, Field]

INT: Field = (int, False)
STR: Field = (str, False)
BOOL: Field = (bool, False)

CLIENT_FRAMES: dict[str, Schema] = {
    "hello": {"after": INT},
    "send": {"client_id": STR, "body": STR},
    "typing": {"active": BOOL},
    "read": {"seq": INT},
    "admit": {},
    "end": {},
    "ping": {},
}

SERVER_FRAMES: dict[str, Schema] = {
    "state": {
        "role": STR,
        "state": STR,
        "remaining": (int, True),
        "warning": BOOL,
        "read_along": BOOL,
        "last_seq": INT,
        "read": INT,
    },
    # ``read`` on a message or an ack: the other side's new read marker, or null.
    "message": {"seq": INT, "sender": STR, "body": STR, "sent_at": STR, "read": (int, True)},
    "caught_up": {"seq": INT},
    "ack": {
        "client_id": STR,
        "seq": INT,
        "duplicate": BOOL,
        "sent_at": (str, True),
        "read": (int, True),
    },
    "typing": {"sender": STR, "active": BOOL},
    "read": {"sender": STR, "seq": INT},
    "tick": {"remaining": INT},
    "warning": {"remaining": INT},
    "error": {"code": STR, "message": STR, "client_id": (str, True)},
    "pong": {},
}


class FrameError(ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def conforms(frame: Any, schemas: dict[str, Schema]) -> bool:
    # A type that is not a string (a list, an object) cannot be looked up: it was a TypeError
    # that closed the connection (1011) where an error frame was due (a review finding).
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        return False
    if frame["type"] not in schemas:
        return False
    schema = schemas[frame["type"]]
    if frame.keys() - {"type"} != schema.keys():
        return False
    return all(_field_ok(frame[name], field) for name, field in schema.items())


def _field_ok(value: Any, field: Field) -> bool:
    types, nullable = field
    if value is None:
        return nullable
    if isinstance(value, bool) and types is not bool:
        return False  # JSON true is not a number here
    return isinstance(value, types)


def parse_client_frame(text: str) -> dict[str, Any]:
    """Parse and validate one client frame; raise FrameError with a code on any fault."""
    if len(text.encode("utf-8", "surrogatepass")) > settings.CHAT_MAX_FRAME_BYTES:
        raise FrameError("too_large")
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting too deep
        raise FrameError("bad_frame") from exc
    if not conforms(frame, CLIENT_FRAMES):
        raise FrameError("bad_frame")
    for name in ("after", "seq"):
        if frame.get(name, 0) < 0:
            raise FrameError("bad_frame")
    return frame


# Compact JSON for frames and the chat's other hot paths (the writer's batch, the Redis
# wake-ups): json.dumps with options builds a new encoder on each call.
ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode(frame_type: str, **fields: Any) -> str:
    return ENCODER.encode({"type": frame_type, **fields})
