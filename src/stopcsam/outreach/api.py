"""The deterrence API for partner platforms (JSON, versioned under /api/v1/).

Thin: authenticate the key, spend its rate budget, validate the body, match, count, answer.
The query is held in memory for the match and never stored or logged, not even on errors.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt

from stopcsam.core.middleware import DATABASE_RETRY_SECONDS
from stopcsam.core.signals import funnel_step
from stopcsam.outreach import selectors, services, texts
from stopcsam.outreach.exceptions import (
    InvalidApiKeyError,
    KeyLookupsSpentError,
    RateLimitedError,
)
from stopcsam.outreach.models import CAMPAIGN_CODE_PATTERN
from stopcsam.outreach.openapi import QUERY_MAX_LENGTH, openapi_document
from stopcsam.outreach.terms import current_matcher

log = logging.getLogger("stopcsam.outreach")
LANGUAGES = ("en", "de", "cs", "pt", "es")
BODY_MAX_BYTES = 16 * 1024


class BadRequest(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    status, payload, extra = _error(status, code, message, **headers)
    response = JsonResponse(payload, status=status)
    for name, value in extra.items():
        response[name] = value
    return response


@csrf_exempt
def deterrence_check(request: HttpRequest) -> HttpResponse:
    try:
        body: bytes | None = request.body if request.method == "POST" else b""
    except RequestDataTooBig:
        body = None
    status, payload, headers = check_response(
        method=request.method or "",
        key=presented_key(
            request.headers.get("Authorization", ""), request.headers.get("X-API-Key", "")
        ),
        body=body,
        base_url=f"{request.scheme}://{request.get_host()}",
        count=lambda campaign, language: _count_now(request, campaign, language),
    )
    response = JsonResponse(payload, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _count_now(request: HttpRequest, campaign: str, language: str) -> None:
    request.outreach_campaign = campaign  # type: ignore[attr-defined]
    request.LANGUAGE_CODE = language
    funnel_step.send(sender=deterrence_check, step="warning_shown", request=request)


Counter = Callable[[str, str], None]


class RequestBudget:
    """What one request spends of its key's rate budget: one unit, however often its check
    is tried (the lean endpoint tries again in a thread when the event loop met the database)."""

    def __init__(self) -> None:
        self.spent = False

    def spend(self, holder: selectors.KeyHolder) -> None:
        if self.spent:
            return
        services.api_key_spend(prefix=holder.prefix, rate_per_minute=holder.rate_per_minute)
        self.spent = True


def check_response(
    *,
    method: str,
    key: str,
    body: bytes | None,
    base_url: str,
    count: Counter,
    budget: RequestBudget | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The whole check, for the Django view and the lean ASGI endpoint alike: status, JSON
    body and extra headers. ``body`` is None when it was too large to read; ``count`` is
    called with the campaign and language of a match; ``budget`` is the request's own when
    the check may be tried more than once."""
    if method != "POST":
        return _error(405, "method_not_allowed", "Use POST.", Allow="POST")
    try:
        holder = selectors.api_key_holder(key=key)
        (budget or RequestBudget()).spend(holder)
        if body is None or len(body) > BODY_MAX_BYTES:
            return _error(413, "too_large", f"The body may have at most {BODY_MAX_BYTES} bytes.")
        query, lang = parse_body(body)
        return 200, answer(query, lang, holder.campaign, base_url=base_url, count=count), {}
    except OperationalError as exc:
        # A JSON answer for the partner's client, on both paths (uvicorn's is a bare text 500).
        # Logged by kind only: the text may quote a value.
        log.error("the database is away (%s); answered 503", type(exc).__name__)
        return _unavailable(DATABASE_RETRY_SECONDS)
    except KeyLookupsSpentError as exc:
        # Made-up keys in a flood: the same answer as an outage, for a valid key this process
        # does not know yet too (keys it knows are answered from memory, unaffected).
        return _unavailable(exc.retry_after)
    except InvalidApiKeyError:
        return _error(
            401, "unauthorized", "A valid API key is required.", WWW_Authenticate="Bearer"
        )
    except RateLimitedError as exc:
        return _error(
            429, "rate_limited", "Too many requests for this key.", Retry_After=str(exc.retry_after)
        )
    except BadRequest as exc:
        return _error(400, exc.code, exc.message)


def _unavailable(retry_after: int) -> tuple[int, dict[str, Any], dict[str, str]]:
    return _error(
        503, "unavailable", "The service is briefly unavailable.", Retry_After=str(retry_after)
    )


def _error(
    status: int, code: str, message: str, **headers: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    extra = {name.replace("_", "-"): value for name, value in headers.items()}
    return status, {"error": {"code": code, "message": message}}, extra


def presented_key(authorization: str, x_api_key: str) -> str:
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return x_api_key.strip()


def parse_body(body: bytes) -> tuple[str, str | None]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # Recursion: nested too deep
        raise BadRequest("invalid_json", "The body must be a JSON object.") from exc
    if not isinstance(data, dict):
        raise BadRequest("invalid_json", "The body must be a JSON object.")
    unknown = set(data) - {"query", "lang"}
    if unknown:
        raise BadRequest("unknown_field", "Only 'query' and 'lang' are accepted.")
    query, lang = data.get("query"), data.get("lang")
    if not isinstance(query, str) or not 1 <= len(query) <= QUERY_MAX_LENGTH:
        raise BadRequest(
            "invalid_query", f"'query' must be a string of 1 to {QUERY_MAX_LENGTH} characters."
        )
    if "lang" in data and lang not in LANGUAGES:
        raise BadRequest("invalid_lang", f"'lang' must be one of {', '.join(LANGUAGES)}.")
    return query, lang


def answer(
    query: str, lang: str | None, campaign: str, *, base_url: str, count: Counter
) -> dict[str, Any]:
    found = current_matcher().first(query)
    language = lang or (found.term.language if found else "en")
    if found is None:
        return {
            "match": False,
            "category": None,
            "message": None,
            "help_url": None,
            "lang": language,
        }
    count(campaign, language)
    with translation.override(language):
        return {
            "match": True,
            "category": found.term.category,
            "message": str(texts.WARNING),
            "help_url": help_url_for(base_url, language=language, campaign=campaign),
            "lang": language,
        }


def help_url(request: HttpRequest, *, language: str, campaign: str) -> str:
    """The link into help: the landing page via a counted hop, carrying only the campaign."""
    return help_url_for(
        f"{request.scheme}://{request.get_host()}", language=language, campaign=campaign
    )


def help_url_for(base_url: str, *, language: str, campaign: str) -> str:
    with translation.override(language):
        path = reverse("outreach:go")
    base = settings.OUTREACH_PUBLIC_URL or base_url
    query = f"?{urlencode({'c': campaign})}" if campaign else ""
    return f"{base}{path}{query}"


# --- widget text, for the script variant ----------------------------------------------------------


# Read-only and public: exempt from CSRF so that any other method gets a clean 405 (JSON)
# rather than the HTML "form expired" page.
@csrf_exempt
def widget_message(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return error(405, "method_not_allowed", "Use GET.", Allow="GET, HEAD")
    lang = request.GET.get("lang", "en")
    campaign = request.GET.get("c")
    if lang not in LANGUAGES:
        return error(400, "invalid_lang", f"'lang' must be one of {', '.join(LANGUAGES)}.")
    if campaign is not None and not _campaign_ok(campaign):
        return error(400, "invalid_campaign", "'c' must be a campaign code.")
    with translation.override(lang):
        body = {
            "lang": lang,
            "title": str(texts.WIDGET_TITLE),
            "message": str(texts.WARNING),
            "button": str(texts.HELP_BUTTON),
            "help_url": help_url(request, language=lang, campaign=campaign or ""),
        }
    response = JsonResponse(body)
    # Any partner page may read this public text; no credentials are ever involved.
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def _campaign_ok(code: str) -> bool:
    return bool(re.fullmatch(CAMPAIGN_CODE_PATTERN, code))


@csrf_exempt
def openapi_json(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return error(405, "method_not_allowed", "Use GET.", Allow="GET, HEAD")
    return JsonResponse(openapi_document())
