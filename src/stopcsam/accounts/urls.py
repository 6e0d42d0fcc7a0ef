from __future__ import annotations

from django.urls import path

from stopcsam.accounts import views

app_name = "accounts"

urlpatterns = [
    path("start/", views.signup, name="signup"),
    path("start/codename/", views.codename_again, name="codename_again"),
    path("login/", views.participant_login_view, name="login"),
    path("logout/", views.participant_logout_view, name="logout"),
    path("me/", views.me, name="me"),
    path("me/delete/", views.delete_account, name="delete"),
    path("staff/", views.staff_home, name="staff_home"),
    path("staff/login/", views.staff_login, name="staff_login"),
    path("staff/enrol/", views.staff_enrol, name="staff_enrol"),
    path("staff/password/", views.staff_password, name="staff_password"),
    path("staff/logout/", views.staff_logout, name="staff_logout"),
    path("staff/invite/<str:token>/", views.invitation_accept, name="invitation_accept"),
]
