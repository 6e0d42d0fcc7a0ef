"""The versioned partner API and the framable widget page; mounted at ``api/v1/`` outside the
language prefix (the language is a parameter here, and nothing may set a cookie)."""

from __future__ import annotations

from django.urls import path

from stopcsam.outreach import api, views

app_name = "outreach_api"

urlpatterns = [
    path("deterrence/check", api.deterrence_check, name="check"),
    path("openapi.json", api.openapi_json, name="openapi"),
    path("widget/message", api.widget_message, name="widget_message"),
    path("widget/frame", views.widget_frame, name="widget_frame"),
]
