"""System checks of the chat's configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register


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


@register()
def check_retention(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """A retention of less than a day could shred a session of today's, still being written."""
    if settings.CHAT_RETENTION_DAYS < 1:
        return [
            Error(
                "CHAT_RETENTION_DAYS must be at least 1.",
                hint="Transcripts are shredded that many days after the last study time point.",
                id="stopcsam.chat.E002",
            )
        ]
    return []


@register()
def check_session_guide(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The session-guide file is content a site edits: a slip is named at start."""
    from stopcsam.chat.selectors import GuideFileError, guide_load

    path = settings.CHAT_SESSION_GUIDE_FILE
    if not path:
        return []
    try:
        guide_load(path)
    except GuideFileError as error:
        return [
            Error(
                f"CHAT_SESSION_GUIDE_FILE {error}.",
                hint="See docs/therapists.md, 'Session guide', for the format.",
                id="stopcsam.chat.E003",
            )
        ]
    return []


@register(deploy=True)
def check_test_mode(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """CHAT_TEST_MODE lets CHAT_DEMO_APPOINTMENTS pass E001 outside demo mode: end-to-end tests
    run a production-like server that way. A deployment never needs it."""
    if settings.CHAT_TEST_MODE:
        return [
            Warning(
                "CHAT_TEST_MODE is on: it exists for end-to-end tests only.",
                hint="Unset CHAT_TEST_MODE (and CHAT_DEMO_APPOINTMENTS) in production.",
                id="stopcsam.chat.W001",
            )
        ]
    return []
