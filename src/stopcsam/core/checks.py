"""System checks that refuse a broken configuration before the server starts."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register

from stopcsam.core.crypto import EncryptionError, parse_keyring


@register()
def check_secrets(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    if not settings.SECRET_KEY_IS_SET:
        errors.append(
            Error(
                "SECRET_KEY is not set.",
                hint="Set SECRET_KEY or SECRET_KEY_FILE, or run in demo mode (STOPCSAM_DEMO=1).",
                id="stopcsam.E001",
            )
        )
    try:
        parse_keyring(settings.STOPCSAM_ENCRYPTION_KEYS)
    except EncryptionError as exc:
        errors.append(
            Error(
                f"Field encryption is not usable: {exc}",
                hint="Set STOPCSAM_ENCRYPTION_KEYS (or _FILE) to id:base64key entries; "
                "`stopcsam newkey <id>` prints one.",
                id="stopcsam.E002",
            )
        )
    if not settings.STOPCSAM_LOOKUP_KEY:
        errors.append(
            Error(
                "STOPCSAM_LOOKUP_KEY is not set; participants could not log in.",
                hint="Set STOPCSAM_LOOKUP_KEY (or _FILE) to a long random string and keep it.",
                id="stopcsam.E003",
            )
        )
    return errors


@register()
def check_scale_out(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    processes = settings.STOPCSAM_PROCESSES
    return scale_out_problems(processes=processes, given_as=f"STOPCSAM_PROCESSES={processes}")


def scale_out_problems(*, processes: int, given_as: str) -> list[Error]:
    """What refuses ``processes`` ASGI processes; ``given_as`` names where the count came from
    (the setting, or ``serve --processes``), so that the message points at it."""
    if processes > 1 and not settings.REDIS_URL:
        return [
            Error(
                f"{given_as} needs REDIS_URL: without it, "
                "processes cannot wake each other and chat messages would not be delivered.",
                hint="Set REDIS_URL, or run one process (the embedded default).",
                id="stopcsam.E004",
            )
        ]
    if processes < 1:
        return [Error(f"{given_as}: at least one process must serve.", id="stopcsam.E005")]
    return []


@register()
def check_test_clock(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    if settings.STOPCSAM_TEST_CLOCK and not (settings.DEMO_MODE or settings.DEBUG):
        return [
            Error(
                "STOPCSAM_TEST_CLOCK is on outside demo and debug mode.",
                hint="The test clock moves the server's time; it exists only for end-to-end tests.",
                id="stopcsam.E006",
            )
        ]
    return []


@register(deploy=True)
def check_demo_in_production(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    if settings.DEMO_MODE:
        return [
            Warning(
                "Demo mode is on: keys are generated on disk and demo one-time codes can be read.",
                hint="Unset STOPCSAM_DEMO in production.",
                id="stopcsam.W001",
            )
        ]
    return []
