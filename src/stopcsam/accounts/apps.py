from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.db.models.signals import post_save

# Saves at sign-in that change nothing a sign-in depends on.
SIGN_IN_BOOKKEEPING = frozenset({"last_login", "failed_logins", "locked_until"})


class AccountsConfig(AppConfig):
    name = "stopcsam.accounts"
    label = "accounts"

    def ready(self) -> None:
        post_save.connect(
            _staff_saved, sender="accounts.StaffUser", dispatch_uid="accounts.staff_saved"
        )


def _staff_saved(
    sender: Any, *, instance: Any, created: bool, update_fields: Any, **kwargs: Any
) -> None:
    """A member of staff's account changed (deactivated, another site, a new password): the
    apps that hold their sign-in open re-check it."""
    from stopcsam.core.signals import sign_in_changed

    if created or (update_fields is not None and set(update_fields) <= SIGN_IN_BOOKKEEPING):
        return
    sign_in_changed.send(sender=type(instance), staff_id=instance.pk)


class CoordinatorAdminConfig(AdminConfig):
    """The Django admin, for coordinators only, behind password + TOTP."""

    default_site = "stopcsam.accounts.admin_site.CoordinatorAdminSite"
