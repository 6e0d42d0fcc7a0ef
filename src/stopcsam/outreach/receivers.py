"""Counting the steps that other apps report through ``core.signals.funnel_step``."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest
from django.utils.translation import get_language

from stopcsam.outreach import services
from stopcsam.outreach.exceptions import UnknownStepError

log = logging.getLogger("stopcsam.outreach")
SESSION_CAMPAIGN = "outreach_campaign"
LANGUAGES = ("en", "de", "cs", "pt", "es")


def request_campaign(request: HttpRequest | None) -> str:
    """The campaign of this request: set on it by our own views, else the visitor's own
    server-side session (kept there from the landing link), else none."""
    if request is None:
        return ""
    explicit = getattr(request, "outreach_campaign", None)
    if explicit is not None:
        return str(explicit)
    session = getattr(request, "session", None)
    return str(session.get(SESSION_CAMPAIGN, "")) if session is not None else ""


def request_language(request: HttpRequest | None) -> str:
    language = getattr(request, "LANGUAGE_CODE", None) or get_language() or "en"
    return language if language in LANGUAGES else "en"


def count_funnel_step(
    sender: Any, *, step: str, request: HttpRequest | None = None, **_: Any
) -> None:
    try:
        services.funnel_increment(
            step=step, campaign=request_campaign(request), language=request_language(request)
        )
    except UnknownStepError:
        # A programming error in the sender; counting must never break its request.
        log.error("funnel step %r is not one of FUNNEL_STEPS", step)
