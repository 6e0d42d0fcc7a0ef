from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from stopcsam.accounts import services
from stopcsam.accounts.models import Participant, Site, StaffInvitation, StaffUser


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "country", "time_zone"]


@admin.register(StaffUser)
class StaffUserAdmin(admin.ModelAdmin):
    list_display = ["username", "display_name", "role", "site", "is_active", "locked_until"]
    list_filter = ["role", "site", "is_active"]
    fields = ["username", "display_name", "role", "site", "languages", "is_active"]
    search_fields = ["username", "display_name"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # staff join by invitation, which also enrols their TOTP device


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ["pk", "language", "created_at"]
    fields = ["language", "created_at"]
    readonly_fields = ["language", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StaffInvitation)
class StaffInvitationAdmin(admin.ModelAdmin):
    list_display = ["role", "site", "display_name", "created_at", "expires_at", "used_at"]
    fields = ["role", "site", "languages", "display_name"]

    def save_model(
        self, request: HttpRequest, obj: StaffInvitation, form: Any, change: bool
    ) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        invitation, token = services.staff_invitation_create(
            role=obj.role,
            site=obj.site,
            languages=obj.languages,
            display_name=obj.display_name,
            created_by=request.user,  # type: ignore[arg-type]
        )
        obj.pk = invitation.pk
        link = request.build_absolute_uri(reverse("accounts:invitation_accept", args=[token]))
        messages.warning(
            request,
            _("Send this link to the new member of staff. It is shown only now: %(link)s")
            % {"link": link},
        )
        return None
