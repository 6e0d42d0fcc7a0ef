"""Response-side privacy: an access log without identity, cache and cookie hardening."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.exceptions import SuspiciousOperation
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.template.loader import get_template
from django.utils.cache import patch_cache_control
from django.utils.translation import get_language

from stopcsam.core.hashing import HashingBusyError
from stopcsam.core.logs import redact_secret_paths

access_log = logging.getLogger("stopcsam.access")
logger = logging.getLogger("stopcsam.core")

Handler = Callable[[HttpRequest], HttpResponseBase]


class AccessLogMiddleware:
    """Logs method, path (never the query string), status and duration. Nothing else."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        # Escaped as Django's own request log does: a line break in the path (%0A) wrote a
        # forged line of its own (a review finding).
        path = redact_secret_paths(request.path).encode("unicode_escape").decode("ascii")
        access_log.info(
            "%s %s %s %.1fms",
            request.method,
            path,
            response.status_code,
            elapsed_ms,
        )
        return response


class PrivacyHeadersMiddleware:
    """Keeps pages out of caches and marks cookies Secure on HTTPS requests.

    Every dynamic page is ``no-store``: a shared computer must not keep a participant's
    pages in its cache or history. Static files keep their normal caching.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if not request.path.startswith(settings.STATIC_URL):
            patch_cache_control(response, no_store=True, private=True)
        if request.is_secure():
            for morsel in response.cookies.values():
                morsel["secure"] = True
        return response


class LanguageCookieMiddleware:
    """Remembers the language of the page last visited, for the browser session only.

    The language is in every URL (``/de/...``); the cookie only matters when someone comes
    back to ``/`` in the same session, which then opens in their chosen language.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        language = getattr(request, "LANGUAGE_CODE", None)
        cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if language and language != cookie and _has_language_prefix(request.path, language):
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                language,
                max_age=None,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite="Strict",
                secure=settings.LANGUAGE_COOKIE_SECURE,
            )
        return response


def _has_language_prefix(path: str, language: str) -> bool:
    return path == f"/{language}/" or path.startswith(f"/{language}/")


class RefuseNulMiddleware:
    """A NUL character in the path, the query or a cookie is refused (400) before any view
    or session reads it: PostgreSQL cannot hold NUL in text, and a lookup by such a value was
    a 500. Forms refuse NUL themselves (Django's CharField)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if _has_nul(request):
            if request.path.startswith("/api/"):  # the partner API answers in its own format
                from django.http import JsonResponse

                error = {"code": "invalid_request", "message": "The request holds a NUL."}
                return JsonResponse({"error": error}, status=400)
            from django.views.defaults import bad_request

            return bad_request(request, SuspiciousOperation("NUL in the request"))
        return self.get_response(request)


def _has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path:
        return True
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            return True
    return any("\x00" in key or "\x00" in value for key, value in request.COOKIES.items())


class BusyMiddleware:
    """A request that found no turn for a slow hash (``core.hashing``) is told the service is
    busy and to try again shortly (503 with Retry-After), in the page's language; nothing was
    stored. One that found the database away is told so (503, see ``database_away``)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        if isinstance(exception, OperationalError):
            return database_away(request, exception)
        if not isinstance(exception, HashingBusyError):
            return None
        response = render(request, "core/busy.html", status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's, with the database away when the session is saved, after the view and past
    BusyMiddleware, answered with the 503 page too: it was a bare 500 (a review finding)."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        try:
            return super().process_response(request, response)
        except OperationalError as exc:
            return database_away(request, exc)


RETRY_AFTER_SECONDS = 30
# A page that failed for the database being away loads itself again after this long.
DATABASE_RETRY_SECONDS = 10


def database_away(request: HttpRequest, exception: OperationalError) -> HttpResponse:
    """The database refused or could not be reached (SQLite's lock held past its timeout,
    PostgreSQL restarting): 503, in the page's language, and a page that was only being read
    loads itself again, also without JavaScript. A plain 500 stopped the waiting room's
    refresh for good (a review finding). A form's answer does not send itself again: what it
    sent may or may not have been stored. Logged by kind only: the text may quote a value."""
    logger.error("the database is away (%s); answered 503", type(exception).__name__)
    again = DATABASE_RETRY_SECONDS if request.method in ("GET", "HEAD") else None
    # Without the request's context processors: they may read the database that is away.
    page = get_template("core/unavailable.html").render(
        {"again": again, "LANGUAGE_CODE": get_language()}
    )
    response = HttpResponse(page, status=503)
    response["Retry-After"] = str(DATABASE_RETRY_SECONDS)
    return response
