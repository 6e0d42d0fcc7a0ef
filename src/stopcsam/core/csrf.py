"""CSRF protection that works with ``Referrer-Policy: no-referrer``.

Under that policy browsers send ``Origin: null`` on same-origin form posts (Fetch standard,
"append a request Origin header"). Django would reject every such post. We accept
``Origin: null`` only when the browser also states ``Sec-Fetch-Site: same-origin``; the CSRF
token is still required in every case, and session cookies are SameSite=Strict.
"""

from __future__ import annotations

from django.db import OperationalError
from django.http import HttpRequest, HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware

from stopcsam.core.middleware import database_away


class FetchMetadataCsrfMiddleware(CsrfViewMiddleware):
    # MiddlewareMixin answers with what process_request returns; django-stubs types
    # CsrfViewMiddleware's as returning nothing.
    def process_request(self, request: HttpRequest) -> HttpResponseBase | None:  # type: ignore[override]
        # The token lives in the session (CSRF_USE_SESSIONS): this is a signed-in request's
        # first query, before any view, where BusyMiddleware cannot see it fail. With the
        # database away it was a bare 500 (the error page reads the session too), which
        # stopped the waiting room's refresh for good (a review finding).
        try:
            super().process_request(request)
        except OperationalError as exc:
            return database_away(request, exc)
        return None

    # A private hook of CsrfViewMiddleware (stable since Django 4.0); django-stubs omits it.
    def _origin_verified(self, request: HttpRequest) -> bool:
        if request.META.get("HTTP_ORIGIN") == "null":
            return request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin"
        return bool(super()._origin_verified(request))  # type: ignore[misc]
