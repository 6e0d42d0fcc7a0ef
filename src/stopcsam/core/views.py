"""Friendly error pages: localised, no stack trace, no detail that could identify anyone."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "core/error_form_expired.html", status=403)


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
