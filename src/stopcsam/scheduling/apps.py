from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "stopcsam.scheduling"
    label = "scheduling"

    def ready(self) -> None:
        from stopcsam.core.signals import participant_withdrawn

        participant_withdrawn.connect(_withdrawn, dispatch_uid="scheduling.participant_withdrawn")


def _withdrawn(sender: object, *, participant_id: int, **kwargs: Any) -> None:
    from stopcsam.scheduling.services import appointments_cancel_on_withdrawal

    appointments_cancel_on_withdrawal(participant_id=participant_id)
