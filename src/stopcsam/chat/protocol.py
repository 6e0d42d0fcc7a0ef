"""The websocket frame protocol (docs/chat-protocol.md): one schema per frame type.

Frames are JSON objects with a ``type``. A schema names every field, its type and whether it
may be null; a frame with a missing, extra or mistyped field is refused. The tests check every
frame the server sends against ``SERVER_FRAMES``.
"""

from __future__ import annotations

import json
import re
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
    """A refused frame; ``client_id``: the id of the message it carried, when one is found,
    so that the client knows which message it was and can give its text back."""

    def __init__(self, code: str, client_id: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.client_id = client_id


# A too large frame is not parsed (that is the point of the limit); its client id is looked
# for in the text: a message refused without one was kept by the browser and sent again on
# every reconnect, never given back to be shortened (a review finding).
CLIENT_ID_IN_TEXT = re.compile(r'"client_id"\s*:\s*"([A-Za-z0-9_-]{8,64})"')


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
        found = CLIENT_ID_IN_TEXT.search(text)
        raise FrameError("too_large", found.group(1) if found else None)
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting too deep
        # Named as a too large frame is: a message cut short (an invalid JSON) whose client
        # id comes back is one the client can give back to be written again.
        found = CLIENT_ID_IN_TEXT.search(text)
        raise FrameError("bad_frame", found.group(1) if found else None) from exc
    if not conforms(frame, CLIENT_FRAMES):
        cid = frame.get("client_id") if isinstance(frame, dict) else None
        raise FrameError("bad_frame", cid if isinstance(cid, str) else None)
    for name in ("after", "seq"):
        if frame.get(name, 0) < 0:
            raise FrameError("bad_frame")
    return frame


# Compact JSON for frames and the chat's other hot paths (the writer's batch, the Redis
# wake-ups): json.dumps with options builds a new encoder on each call.
ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode(frame_type: str, **fields: Any) -> str:
    return ENCODER.encode({"type": frame_type, **fields})
