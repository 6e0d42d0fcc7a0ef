from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "stopcsam.core"
    label = "core"

    def ready(self) -> None:
        from stopcsam.core import checks  # noqa: F401  (registers the system checks)
