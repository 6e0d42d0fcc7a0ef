from __future__ import annotations

from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path

from stopcsam.core.views import favicon, healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon),
    # The partner API: versioned, outside the language prefix (the language is a parameter).
    path("api/v1/", include("stopcsam.outreach.api_urls")),
]
handler400 = "stopcsam.core.views.bad_request"
handler403 = "stopcsam.core.views.permission_denied"
handler404 = "stopcsam.core.views.page_not_found"

urlpatterns += i18n_patterns(
    path("", include("stopcsam.outreach.urls")),
    path("", include("stopcsam.accounts.urls")),
    path("study/", include("stopcsam.study.urls")),
    path("sessions/", include("stopcsam.scheduling.urls")),
    path("chat/", include("stopcsam.chat.urls")),
    prefix_default_language=True,
)
