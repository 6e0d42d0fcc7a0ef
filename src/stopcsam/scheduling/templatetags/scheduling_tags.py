from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template

register = template.Library()


@register.filter
def epoch(value: datetime) -> int:
    """A slot start as seconds since 1970, the form value every slot picker posts."""
    return int(value.timestamp())


@register.inclusion_tag("scheduling/_notices.html", takes_context=True)
def scheduling_notices(context: dict[str, Any]) -> dict[str, Any]:
    """Reminders and missed-session offers, for any participant page that wants to show
    them at the next visit: ``{% load scheduling_tags %}{% scheduling_notices %}``."""
    from stopcsam.scheduling.selectors import open_notices
    from stopcsam.scheduling.views import participant_zone

    request = context["request"]
    participant = getattr(request, "participant", None)
    if not participant:
        return {"notices": [], "request": request}
    return {
        "notices": list(open_notices(participant=participant)),
        "tz": participant_zone(request),
        "request": request,
        "csrf_token": context.get("csrf_token"),
    }
