from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def site_context(request: HttpRequest) -> dict[str, Any]:
    return {
        "quick_exit_url": settings.STOPCSAM_QUICK_EXIT_URL,
        "demo_mode": settings.DEMO_MODE,
    }
