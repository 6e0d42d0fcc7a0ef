from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "stopcsam.chat"
    label = "chat"

    def ready(self) -> None:
        from stopcsam.chat import checks  # noqa: F401  (registers the checks)
