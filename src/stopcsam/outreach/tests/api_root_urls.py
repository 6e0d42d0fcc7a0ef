"""The project's URLs with the partner API mounted at api/v1/ (until stopcsam.urls mounts it).

Used by the tests here and, through ``live_settings``, by the real server in end-to-end tests.
"""

from __future__ import annotations

from django.urls import include, path
from django.urls.exceptions import Resolver404

from stopcsam.urls import urlpatterns as project_urlpatterns


def _already_mounted() -> bool:
    from django.urls import get_resolver

    try:
        get_resolver("stopcsam.urls").resolve("/api/v1/openapi.json")
    except Resolver404:
        return False
    return True


urlpatterns = list(project_urlpatterns)
if not _already_mounted():
    urlpatterns.append(path("api/v1/", include("stopcsam.outreach.api_urls")))
