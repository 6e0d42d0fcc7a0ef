from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_delete, pre_delete


class ChatConfig(AppConfig):
    name = "stopcsam.chat"
    label = "chat"

    def ready(self) -> None:
        from stopcsam.chat import checks  # noqa: F401  (registers the checks)
        from stopcsam.core.signals import sign_in_changed

        sign_in_changed.connect(_sign_in_changed, dispatch_uid="chat.sign_in_changed")
        pre_delete.connect(
            _session_erasing, sender="chat.ChatSession", dispatch_uid="chat.session_erasing"
        )
        post_delete.connect(
            _session_deleted, sender="chat.ChatSession", dispatch_uid="chat.session_deleted"
        )


def _sign_in_changed(
    sender: Any, *, session_key: str = "", staff_id: int = 0, **kwargs: Any
) -> None:
    from stopcsam.chat.services import sockets_recheck

    sockets_recheck(session_key=session_key, staff_id=staff_id)


def _session_erasing(sender: Any, *, instance: Any, **kwargs: Any) -> None:
    """A chat session about to be erased with its participant (``session_erasing``)."""
    from stopcsam.chat.services import session_erasing

    session_erasing(session=instance)


def _session_deleted(sender: Any, *, instance: Any, **kwargs: Any) -> None:
    """A chat session erased with its participant ("stop and erase"): the sockets still open
    on it (the therapist's) check again, find it gone and close, now rather than at their
    next safety poll."""
    from stopcsam.chat.services import RECHECK, publish_on_commit

    publish_on_commit(instance.pk, RECHECK)
