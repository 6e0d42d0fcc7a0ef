from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from stopcsam.accounts import services
from stopcsam.accounts.models import Participant, Role, Site, StaffInvitation, StaffUser
from stopcsam.core.admin import CheckedActionsAdmin
from stopcsam.core.audit import audit_record


@admin.register(Site)
class SiteAdmin(CheckedActionsAdmin):
    """Sites are the study administrators' to change: a site's code decides whether its
    supervisors read along, its time zone every calendar there. A coordinator sees their own."""

    list_display = ["code", "name", "country", "time_zone"]

    def get_queryset(self, request: HttpRequest) -> Any:
        rows = super().get_queryset(request)
        return rows if _study_admin(request) else rows.filter(pk=request.user.site_id)  # type: ignore[union-attr]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _study_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _study_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _study_admin(request)


# What a coordinator may give: the roles of their own site's clinical staff. A study
# administrator gives any role at any site; nobody changes their own role, site or activity.
COORDINATOR_GIVES = (Role.THERAPIST, Role.SUPERVISOR)


def _study_admin(request: HttpRequest) -> bool:
    return getattr(request.user, "role", None) == Role.STUDY_ADMIN


class SiteScopedAdmin(CheckedActionsAdmin):
    """Staff and invitations of the coordinator's own site only, with the roles a coordinator
    may give; a study administrator sees and gives everything."""

    def get_queryset(self, request: HttpRequest) -> Any:
        rows = super().get_queryset(request)
        return rows if _study_admin(request) else rows.filter(site=request.user.site_id)  # type: ignore[union-attr]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "site" and not _study_admin(request):
            kwargs["queryset"] = Site.objects.filter(pk=request.user.site_id)  # type: ignore[union-attr]
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_choice_field(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "role" and not _study_admin(request):
            kwargs["choices"] = [(role.value, role.label) for role in COORDINATOR_GIVES]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


@admin.register(StaffUser)
class StaffUserAdmin(SiteScopedAdmin):
    list_display = ["username", "display_name", "role", "site", "is_active", "locked_until"]
    list_filter = ["role", "site", "is_active"]
    fields = ["username", "display_name", "role", "site", "languages", "is_active"]
    search_fields = ["username", "display_name"]
    actions = ["unlock", "two_factor_reset"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # staff join by invitation, which also enrols their TOTP device

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # their audit trail names them: deactivate instead

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not _study_admin(request):
            # A coordinator changes clinical staff of their own site only.
            return bool(obj.role in COORDINATOR_GIVES and obj.site_id == request.user.site_id)  # type: ignore[union-attr]
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.pk == request.user.pk:
            return ["role", "site", "is_active"]
        return super().get_readonly_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: StaffUser, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and form.changed_data:
            # A role, site or activity decides what the account reads: audited (in the admin's
            # transaction) by the names of the fields changed, not their free text.
            audit_record(
                actor=request.user.audit_ref,  # type: ignore[union-attr]
                action="staff.changed",
                subject=obj.audit_ref,
                detail={
                    "fields": sorted(form.changed_data),
                    "role": obj.role,
                    "site": obj.site.code,
                    "active": obj.is_active,
                },
            )
        if change and "is_active" in form.changed_data and not obj.is_active:
            # A deactivated account's browsers are strangers again if it is ever reactivated,
            # and signed out: none is signed in again by the reactivation.
            services.staff_device_cookies_revoke(user=obj, actor=request.user.audit_ref)  # type: ignore[union-attr]
            services.staff_sessions_end(user=obj, actor=request.user.audit_ref)  # type: ignore[union-attr]

    @admin.action(description=gettext_lazy("Unlock the login"), permissions=["change"])
    def unlock(self, request: HttpRequest, queryset: Any) -> None:
        done = self._for_each_changeable(request, queryset, services.staff_unlock, self_too=True)
        self.message_user(
            request,
            ngettext(
                "The login of %(count)d account is unlocked.",
                "The logins of %(count)d accounts are unlocked.",
                done,
            )
            % {"count": done},
        )

    @admin.action(description=gettext_lazy("Reset two-factor login"), permissions=["change"])
    def two_factor_reset(self, request: HttpRequest, queryset: Any) -> None:
        # Not one's own: it would sign out the coordinator acting, with no authenticator left.
        done = self._for_each_changeable(
            request, queryset, services.staff_two_factor_reset, self_too=False
        )
        self.message_user(
            request,
            ngettext(
                "Two-factor login is reset for %(count)d account: at the next login with "
                "the password, a new authenticator app is set up.",
                "Two-factor login is reset for %(count)d accounts: at the next login with "
                "the password, a new authenticator app is set up.",
                done,
            )
            % {"count": done},
        )

    def _for_each_changeable(
        self, request: HttpRequest, queryset: Any, action: Any, *, self_too: bool
    ) -> int:
        """Only the accounts this user could change: a coordinator's site's clinical staff."""
        done = 0
        for user in queryset:
            if (self_too or user.pk != request.user.pk) and self.has_change_permission(
                request, user
            ):
                action(user=user, actor=request.user.audit_ref)  # type: ignore[union-attr]
                done += 1
        if done < len(queryset):
            self.message_user(
                request,
                _("Some of the chosen accounts cannot be changed by you; they were left alone."),
                messages.WARNING,
            )
        return done


@admin.register(Participant)
class ParticipantAdmin(CheckedActionsAdmin):
    list_display = ["pk", "language", "created_at"]
    fields = ["language", "created_at"]
    readonly_fields = ["language", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Only the participant erases their account ("stop and erase"), which is counted and
        # audited, and leaves nothing in the database files.
        return False


@admin.register(StaffInvitation)
class StaffInvitationAdmin(SiteScopedAdmin):
    list_display = ["role", "site", "display_name", "created_at", "expires_at", "used_at"]
    fields = ["role", "site", "languages", "display_name"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not _study_admin(request):
            # A coordinator changes only the invitations they could give, as for accounts: not
            # a study administrator's invitation of a coordinator at their site.
            return obj.role in COORDINATOR_GIVES
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not _study_admin(request):
            return obj.role in COORDINATOR_GIVES
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: StaffInvitation) -> None:
        _audit_withdrawn(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        _audit_withdrawn(request, list(queryset))
        super().delete_queryset(request, queryset)

    def save_model(
        self, request: HttpRequest, obj: StaffInvitation, form: Any, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            if form.changed_data:
                # The link may be out already: whoever opens it gets the new role and site.
                audit_record(
                    actor=request.user.audit_ref,  # type: ignore[union-attr]
                    action="staff.invitation_changed",
                    subject=f"invitation:{obj.pk}",
                    detail={
                        "fields": sorted(form.changed_data),
                        "role": obj.role,
                        "site": obj.site.code,
                    },
                )
            return None
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


def _audit_withdrawn(request: HttpRequest, invitations: list[StaffInvitation]) -> None:
    """A withdrawn invitation, as a changed one is: who took back which role at which site
    (a review finding: only its issue, change and acceptance were in the audit chain)."""
    for invitation in invitations:
        audit_record(
            actor=request.user.audit_ref,  # type: ignore[union-attr]
            action="staff.invitation_withdrawn",
            subject=f"invitation:{invitation.pk}",
            detail={"role": invitation.role, "site": invitation.site.code},
        )
