from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class AccountsConfig(AppConfig):
    name = "stopcsam.accounts"
    label = "accounts"


class CoordinatorAdminConfig(AdminConfig):
    """The Django admin, for coordinators only, behind password + TOTP."""

    default_site = "stopcsam.accounts.admin_site.CoordinatorAdminSite"
