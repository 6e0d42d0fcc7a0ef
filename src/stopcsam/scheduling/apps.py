from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_save


class SchedulingConfig(AppConfig):
    name = "stopcsam.scheduling"
    label = "scheduling"

    def ready(self) -> None:
        from stopcsam.core.signals import participant_withdrawn

        participant_withdrawn.connect(_withdrawn, dispatch_uid="scheduling.participant_withdrawn")
        post_save.connect(
            _staff_saved, sender="accounts.StaffUser", dispatch_uid="scheduling.staff_saved"
        )


def _withdrawn(sender: object, *, participant_id: int, **kwargs: Any) -> None:
    from stopcsam.scheduling.services import appointments_cancel_on_withdrawal

    appointments_cancel_on_withdrawal(participant_id=participant_id)


def _staff_saved(
    sender: Any, *, instance: Any, created: bool, update_fields: Any, **kwargs: Any
) -> None:
    """A new password (saved by itself: accounts.services) or a deactivation ends the
    calendar feed link."""
    from stopcsam.scheduling.services import feed_token_end

    if created:
        return
    if not instance.is_active:
        feed_token_end(staff=instance, reason="deactivated")
    elif update_fields is not None and "password" in update_fields:
        feed_token_end(staff=instance, reason="password_changed")
