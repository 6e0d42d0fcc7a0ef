from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from stopcsam.accounts.decorators import is_verified_staff

NOT_ADMINISTERED = frozenset({"otp_totp", "otp_static", "otp_email", "otp_hotp"})


class CoordinatorAdminSite(admin.AdminSite):
    site_header = _("Coordination")
    site_title = _("Coordination")
    index_title = _("Site administration")

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and is_verified_staff(user))

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        """Every app's admin but the one-time-code devices': their page shows each staff
        member's TOTP secret, which would leave their login a password alone."""
        models = (
            model_or_iterable
            if isinstance(model_or_iterable, list | tuple)
            else [model_or_iterable]
        )
        kept = [m for m in models if m._meta.app_label not in NOT_ADMINISTERED]
        if kept:
            super().register(kept, admin_class, **options)

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # One login for all staff: ours, with per-account throttling and TOTP.
        return redirect(f"{reverse('accounts:staff_login')}?next={reverse('admin:index')}")

    # The stubs type these two as template responses: a redirect serves Django's URLs as well.
    def password_change(  # type: ignore[override]
        self, request: HttpRequest, extra_context: Any = None
    ) -> HttpResponse:
        # Ours: a wrong old password counts as a failed login and locks alike, and the other
        # devices are signed out. Django's checked it without limit (a review finding).
        return redirect("accounts:staff_password")

    def password_change_done(  # type: ignore[override]
        self, request: HttpRequest, extra_context: Any = None
    ) -> HttpResponse:
        return redirect("accounts:staff_password")
