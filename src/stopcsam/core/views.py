"""Friendly error pages: localised, no stack trace, no detail that could identify anyone."""

from __future__ import annotations

from collections.abc import Callable

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import defaults

from stopcsam.core.middleware import database_away


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    try:
        return render(request, "core/error_form_expired.html", status=403)
    except OperationalError as exc:
        return database_away(request, exc)


# The error pages read the sign-in (core/base.html). With the database gone by then, Django
# answered its 500 page instead of the 503 one, which loads itself again (a review finding).
def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _unless_database_away(defaults.bad_request, request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _unless_database_away(defaults.permission_denied, request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _unless_database_away(defaults.page_not_found, request, exception)


def _unless_database_away(
    page: Callable[[HttpRequest, Exception], HttpResponse],
    request: HttpRequest,
    exception: Exception,
) -> HttpResponse:
    try:
        return page(request, exception)
    except OperationalError as exc:
        return database_away(request, exc)


def healthz(request: HttpRequest) -> HttpResponse:
    from stopcsam.core.selectors import health_report

    report = health_report()
    status = 200 if all(report.values()) else 503
    body = "\n".join(f"{name}: {'ok' if ok else 'failing'}" for name, ok in report.items())
    return HttpResponse(body + "\n", content_type="text/plain", status=status)


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every page: answered with nothing, rather than a 404
    that wrote a warning to the log each time. The service shows no icon on purpose: a
    neutral tab on a shared screen."""
    return HttpResponse(status=204)
