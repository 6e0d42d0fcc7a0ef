from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse


def site_context(request: HttpRequest) -> dict[str, Any]:
    return {
        "quick_exit_url": settings.STOPCSAM_QUICK_EXIT_URL,
        "demo_mode": settings.DEMO_MODE,
        # Where a signed-in participant's pages lead back to (every page links it).
        "participant_home_url": reverse(settings.STOPCSAM_PARTICIPANT_HOME),
    }
