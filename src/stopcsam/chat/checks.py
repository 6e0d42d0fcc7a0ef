"""System checks of the chat's configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_demo_appointments(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    if settings.CHAT_DEMO_APPOINTMENTS and not (settings.DEMO_MODE or settings.CHAT_TEST_MODE):
        return [
            Error(
                "CHAT_DEMO_APPOINTMENTS reads appointments from a file: demo and tests only.",
                hint="Unset CHAT_DEMO_APPOINTMENTS; scheduling provides appointments.",
                id="stopcsam.chat.E001",
            )
        ]
    return []
