"""The time zone a person reads times in: a participant's chosen zone (kept in their session
only, never stored with them), else their language's usual one; a member of staff's site's.

Scheduling asks the participant for their zone when they book; the chat shows its times in
the same zone, so a session booked for 16:00 reads 16:00 everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.http import HttpRequest
from django.utils import timezone

SESSION_KEY = "scheduling_tz"
DEFAULT_ZONE = {
    "de": "Europe/Berlin",
    "es": "Europe/Madrid",
    "pt": "Europe/Lisbon",
    "cs": "Europe/Prague",
    "en": "Europe/London",
}


def valid(name: object) -> bool:
    if not isinstance(name, str) or "/" not in name:
        return False
    try:
        ZoneInfo(name)
    # OSError: a folder of the zone database ("America/Argentina") or a name too long for a
    # file is no zone either; raised, it was a 500 on every page that reads the zone.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def reader_zone(request: HttpRequest) -> str:
    """The zone the person behind this request reads times in."""
    participant = getattr(request, "participant", None)  # a lazy object, falsy for staff
    if participant:
        stored = request.session.get(SESSION_KEY, "")
        if valid(stored):
            return str(stored)
        return DEFAULT_ZONE.get(participant.language, "UTC")
    site = getattr(getattr(request, "user", None), "site", None)
    zone = getattr(site, "time_zone", "")
    return zone if valid(zone) else "UTC"


def in_reader_zone(view: Callable[..., Any]) -> Callable[..., Any]:
    """Render a view's times in the reader's zone (``reader_zone``), named as ``zone`` in
    ``request.reader_zone`` for templates."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        zone = reader_zone(request)
        request.reader_zone = zone  # type: ignore[attr-defined]
        with timezone.override(ZoneInfo(zone)):
            response = view(request, *args, **kwargs)
            render = getattr(response, "render", None)
            if callable(render) and not getattr(response, "is_rendered", True):
                response.render()  # a lazy response renders inside the zone too
        return response

    return wrapped
