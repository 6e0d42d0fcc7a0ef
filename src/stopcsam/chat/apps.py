from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "stopcsam.chat"
    label = "chat"

    def ready(self) -> None:
        from stopcsam.chat import checks  # noqa: F401  (registers the checks)
        from stopcsam.core.signals import sign_in_changed

        sign_in_changed.connect(_sign_in_changed, dispatch_uid="chat.sign_in_changed")


def _sign_in_changed(
    sender: Any, *, session_key: str = "", staff_id: int = 0, **kwargs: Any
) -> None:
    from stopcsam.chat.services import sockets_recheck

    sockets_recheck(session_key=session_key, staff_id=staff_id)
