from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import SimpleLazyObject

from stopcsam.accounts.sessions import session_participant


class ParticipantMiddleware:
    """Sets ``request.participant`` (lazily) from the server-side session."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request.participant = SimpleLazyObject(  # type: ignore[attr-defined]
            lambda: session_participant(request)
        )
        return self.get_response(request)
