from __future__ import annotations

from django.urls import path

from stopcsam.outreach import views

app_name = "outreach"

urlpatterns = [
    path("", views.home, name="home"),
    path("info/<slug:slug>/", views.page, name="page"),
    path("support/", views.resources, name="resources"),
    path("go/", views.go, name="go"),
    path("survey/", views.survey, name="survey"),
    path("staff/outreach/funnel/", views.funnel, name="funnel"),
    path("staff/outreach/survey/", views.survey_results, name="survey_results"),
]
