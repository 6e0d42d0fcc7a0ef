"""CSRF protection that works with ``Referrer-Policy: no-referrer``.

Under that policy browsers send ``Origin: null`` on same-origin form posts (Fetch standard,
"append a request Origin header"). Django would reject every such post. We accept
``Origin: null`` only when the browser also states ``Sec-Fetch-Site: same-origin``; the CSRF
token is still required in every case, and session cookies are SameSite=Strict.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware


class FetchMetadataCsrfMiddleware(CsrfViewMiddleware):
    # A private hook of CsrfViewMiddleware (stable since Django 4.0); django-stubs omits it.
    def _origin_verified(self, request: HttpRequest) -> bool:
        if request.META.get("HTTP_ORIGIN") == "null":
            return request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin"
        return bool(super()._origin_verified(request))  # type: ignore[misc]
