from __future__ import annotations

from django.apps import AppConfig


class OutreachConfig(AppConfig):
    name = "stopcsam.outreach"
    label = "outreach"

    def ready(self) -> None:
        from stopcsam.core.signals import funnel_step
        from stopcsam.outreach import checks  # noqa: F401  (registers the checks)
        from stopcsam.outreach.receivers import count_funnel_step

        funnel_step.connect(count_funnel_step, dispatch_uid="outreach.count_funnel_step")
