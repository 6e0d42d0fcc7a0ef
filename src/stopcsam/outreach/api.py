"""The deterrence API for partner platforms (JSON, versioned under /api/v1/).

Thin: authenticate the key, spend its rate budget, validate the body, match, count, answer.
The query is held in memory for the match and never stored or logged, not even on errors.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt

from stopcsam.core.signals import funnel_step
from stopcsam.outreach import selectors, services, texts
from stopcsam.outreach.exceptions import InvalidApiKeyError, RateLimitedError
from stopcsam.outreach.models import CAMPAIGN_CODE_PATTERN
from stopcsam.outreach.openapi import QUERY_MAX_LENGTH, openapi_document
from stopcsam.outreach.terms import current_matcher

LANGUAGES = ("en", "de", "cs", "pt", "es")
BODY_MAX_BYTES = 16 * 1024


class BadRequest(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


@csrf_exempt
def deterrence_check(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return error(405, "method_not_allowed", "Use POST.", Allow="POST")
    try:
        holder = selectors.api_key_holder(key=_presented_key(request))
        services.api_key_spend(prefix=holder.prefix, rate_per_minute=holder.rate_per_minute)
        query, lang = _check_body(request)
    except InvalidApiKeyError:
        return error(401, "unauthorized", "A valid API key is required.", WWW_Authenticate="Bearer")
    except RateLimitedError as exc:
        return error(
            429, "rate_limited", "Too many requests for this key.", Retry_After=str(exc.retry_after)
        )
    except BadRequest as exc:
        return error(400, exc.code, exc.message)
    except RequestDataTooBig:
        return error(413, "too_large", f"The body may have at most {BODY_MAX_BYTES} bytes.")
    return JsonResponse(_answer(request, query, lang, holder.campaign))


def _presented_key(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-API-Key", "").strip()


def _check_body(request: HttpRequest) -> tuple[str, str | None]:
    body = request.body
    if len(body) > BODY_MAX_BYTES:
        raise RequestDataTooBig
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
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


def _answer(request: HttpRequest, query: str, lang: str | None, campaign: str) -> dict[str, Any]:
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
    request.outreach_campaign = campaign  # type: ignore[attr-defined]
    request.LANGUAGE_CODE = language
    funnel_step.send(sender=deterrence_check, step="warning_shown", request=request)
    with translation.override(language):
        return {
            "match": True,
            "category": found.term.category,
            "message": str(texts.WARNING),
            "help_url": help_url(request, language=language, campaign=campaign),
            "lang": language,
        }


def help_url(request: HttpRequest, *, language: str, campaign: str) -> str:
    """The link into help: the landing page via a counted hop, carrying only the campaign."""
    with translation.override(language):
        path = reverse("outreach:go")
    base = settings.OUTREACH_PUBLIC_URL or f"{request.scheme}://{request.get_host()}"
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
