"""Access guards for views: participants by session, staff by password + TOTP."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse


def is_verified_staff(user: object) -> bool:
    """Logged in with a password *and* a TOTP code in this session (set by OTPMiddleware)."""
    is_verified = getattr(user, "is_verified", None)
    return bool(getattr(user, "is_authenticated", False) and is_verified and is_verified())


def participant_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.participant:  # type: ignore[attr-defined]
            # Back to the page after logging in; not a form's target, which would come back
            # as a GET without what was sent.
            if request.method == "GET":
                return redirect(f"{reverse('accounts:login')}?next={quote(request.path)}")
            return redirect("accounts:login")
        return view(request, *args, **kwargs)

    return guarded


def staff_verified_required(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = request.user
        if not is_verified_staff(user):
            # Quoted as the participants' is: an "&" in the path cut it short, or named
            # another page to land on.
            return redirect(f"{reverse('accounts:staff_login')}?next={quote(request.path)}")
        return view(request, *args, **kwargs)

    return guarded
