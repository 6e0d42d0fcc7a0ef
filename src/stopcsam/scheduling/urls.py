from __future__ import annotations

from django.urls import path

from stopcsam.scheduling import staff_views, views

app_name = "scheduling"

urlpatterns = [
    path("", views.my_sessions, name="mine"),
    path("book/", views.book, name="book"),
    path("book/propose/", views.propose, name="propose"),
    path("book/confirm/", views.confirm, name="confirm"),
    path("notices/<int:notice_id>/dismiss/", views.notice_dismiss, name="notice_dismiss"),
    path("course/<str:ref>.ics", views.course_ics, name="course_ics"),
    path("s/<str:ref>.ics", views.appointment_ics, name="appointment_ics"),
    path("s/<str:ref>/reschedule/", views.reschedule, name="reschedule"),
    path("s/<str:ref>/cancel/", views.cancel, name="cancel"),
    # The key travels in the query string, which the access log never writes.
    path("feed.ics", views.staff_feed, name="feed"),
    path("staff/", staff_views.calendar, name="calendar"),
    path("staff/availability/", staff_views.availability, name="availability"),
    path("staff/availability/window/", staff_views.window_add, name="window_add"),
    path(
        "staff/availability/window/<int:window_id>/delete/",
        staff_views.window_delete,
        name="window_delete",
    ),
    path("staff/availability/exception/", staff_views.exception_add, name="exception_add"),
    path(
        "staff/availability/exception/<int:exception_id>/delete/",
        staff_views.exception_delete,
        name="exception_delete",
    ),
    path("staff/availability/limits/", staff_views.limits, name="limits"),
    path("staff/feed/reset/", staff_views.feed_reset, name="feed_reset"),
    path("staff/feed/revoke/", staff_views.feed_revoke, name="feed_revoke"),
    path("staff/a/<str:ref>/", staff_views.appointment_detail, name="staff_appointment"),
    path(
        "staff/a/<str:ref>/reschedule/",
        staff_views.appointment_reschedule,
        name="staff_reschedule",
    ),
    path("staff/a/<str:ref>/cancel/", staff_views.appointment_cancel, name="staff_cancel"),
    path("staff/a/<str:ref>/booster/", staff_views.booster_add, name="booster_add"),
    path("staff/a/<str:ref>/handover/", staff_views.handover, name="handover"),
    path("staff/utilisation/", staff_views.utilisation, name="utilisation"),
    path(
        "staff/utilisation/<int:staff_id>/qualified/",
        staff_views.qualification,
        name="qualification",
    ),
]
