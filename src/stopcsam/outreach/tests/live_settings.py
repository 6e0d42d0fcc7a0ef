"""Production settings with the partner API mounted, for the real server in e2e tests."""

from __future__ import annotations

from stopcsam.settings import *  # noqa: F403

ROOT_URLCONF = "stopcsam.outreach.tests.api_root_urls"
