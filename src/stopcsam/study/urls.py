from __future__ import annotations

from django.urls import path

from stopcsam.study import views

app_name = "study"

urlpatterns = [
    path("", views.home, name="home"),
    path("screening/", views.screening_start, name="screening_start"),
    path("eligible/", views.eligible, name="eligible"),
    path("enrol/", views.enrol, name="enrol"),
    path("consent/", views.consent, name="consent"),
    path("consent/copy/", views.consent_copy, name="consent_copy"),
    path(
        "questionnaire/<slug:time_point>/<slug:instrument>/",
        views.questionnaire,
        name="questionnaire",
    ),
    path("allocation/", views.allocation, name="allocation"),
    path("withdraw/", views.withdraw, name="withdraw"),
    path("research/export/", views.export_page, name="export"),
    path("research/codebook.<str:fmt>", views.codebook_download, name="codebook"),
]
