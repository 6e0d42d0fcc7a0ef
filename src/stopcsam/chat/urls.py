from __future__ import annotations

from django.urls import path

from stopcsam.chat import views

app_name = "chat"

urlpatterns = [
    path("", views.participant_sessions, name="sessions"),
    path("s/<str:public_id>/", views.participant_session, name="session"),
    path("s/<str:public_id>/feedback/", views.participant_feedback, name="feedback"),
    path("console/", views.console_sessions, name="console_sessions"),
    path("console/escalations/", views.escalations, name="escalations"),
    path("console/<str:public_id>/", views.console, name="console"),
    path("console/<str:public_id>/notes/", views.console_notes, name="console_notes"),
    path("console/<str:public_id>/escalate/", views.console_escalate, name="console_escalate"),
    path(
        "console/<str:public_id>/transcript/<str:earlier_id>/",
        views.console_transcript,
        name="console_transcript",
    ),
]
