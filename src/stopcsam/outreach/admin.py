"""Coordinators edit front-door pages, the directory, campaigns, partners and keys here.
Every write goes through a service, so publishing and key changes are audited."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from stopcsam.accounts.models import LANGUAGE_CHOICES
from stopcsam.core.admin import CheckedActionsAdmin
from stopcsam.outreach import directory_io, services
from stopcsam.outreach.models import (
    ApiKey,
    Campaign,
    Page,
    Partner,
    Resource,
    ResourceText,
    TermListStamp,
)


@admin.register(Page)
class PageAdmin(CheckedActionsAdmin):
    list_display = ["slug", "language", "title", "status", "updated_at", "published_at"]
    list_filter = ["status", "language", "slug"]
    fields = ["slug", "language", "title", "summary", "body", "status"]
    search_fields = ["title"]

    def save_model(self, request: HttpRequest, obj: Page, form: Any, change: bool) -> None:
        services.page_save(page=obj, by=request.user)  # type: ignore[arg-type]


class ResourceTextInline(admin.TabularInline):
    """The description, hours and cost in the site's other languages; a language (or a
    field) without one shows the service's own."""

    model = ResourceText
    extra = 1


class ResourceForm(forms.ModelForm):
    # Boxes to tick, not the JSON field's free text: it took any JSON, and 5 was saved and
    # broke the public directory filtered by language ("de" in 5), "de" showed as "d, e".
    languages = forms.MultipleChoiceField(
        label=gettext_lazy("languages"),
        choices=LANGUAGE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Resource
        fields = [*directory_io.FIELDS, "active"]  # a service's fields, as imported


@admin.register(Resource)
class ResourceAdmin(CheckedActionsAdmin):
    form = ResourceForm
    inlines = [ResourceTextInline]
    list_display = ["name", "country", "kind", "anonymous", "active"]
    list_filter = ["country", "kind", "active"]
    search_fields = ["name"]


@admin.register(Campaign)
class CampaignAdmin(CheckedActionsAdmin):
    list_display = ["code", "label", "active"]


@admin.register(Partner)
class PartnerAdmin(CheckedActionsAdmin):
    list_display = ["name", "campaign", "created_at"]
    fields = ["name", "campaign"]

    def save_model(self, request: HttpRequest, obj: Partner, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["name", "campaign"])
            return
        created = services.partner_create(
            name=obj.name,
            campaign_code=obj.campaign.code,
            by=request.user,  # type: ignore[arg-type]
        )
        obj.pk = created.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting took the partner's keys with it, unrevoked and unaudited, and a process
        # kept accepting a key it remembered: revoke the keys instead (ApiKeyAdmin).
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(CheckedActionsAdmin):
    list_display = ["partner", "prefix", "label", "rate_per_minute", "created_at", "revoked_at"]
    list_filter = ["partner"]
    fields = ["partner", "label", "rate_per_minute"]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["partner"] if obj else []

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "rate_per_minute":
            kwargs["min_value"] = 1  # 0 was accepted, and the key answered 429 to everything
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["label", "rate_per_minute"])
            return
        api_key, key = services.api_key_create(
            partner=obj.partner,
            label=obj.label,
            rate_per_minute=obj.rate_per_minute,
            by=request.user,  # type: ignore[arg-type]
        )
        obj.pk = api_key.pk
        messages.warning(
            request, _("Give this key to the partner. It is shown only now: %(key)s") % {"key": key}
        )

    @admin.action(description=gettext_lazy("Revoke the selected keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset:
            services.api_key_revoke(api_key=api_key, by=request.user)  # type: ignore[arg-type]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead, so the audit trail keeps the key's history


@admin.register(TermListStamp)
class TermListStampAdmin(CheckedActionsAdmin):
    list_display = ["version", "term_count", "loaded_at"]
    readonly_fields = ["version", "digest", "term_count", "loaded_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # `stopcsam reload_terms` checks the files and raises the version
