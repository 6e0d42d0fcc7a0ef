from __future__ import annotations

from django.apps import AppConfig


class TestAppConfig(AppConfig):
    name = "stopcsam.core.tests.testapp"
    label = "core_testapp"
