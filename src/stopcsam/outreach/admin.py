"""Coordinators edit front-door pages, the directory, campaigns, partners and keys here.
Every write goes through a service, so publishing and key changes are audited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from stopcsam.outreach import services
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
class PageAdmin(admin.ModelAdmin):
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


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    inlines = [ResourceTextInline]
    list_display = ["name", "country", "kind", "anonymous", "active"]
    list_filter = ["country", "kind", "active"]
    search_fields = ["name"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["code", "label", "active"]


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
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
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["partner", "prefix", "label", "rate_per_minute", "created_at", "revoked_at"]
    list_filter = ["partner"]
    fields = ["partner", "label", "rate_per_minute"]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["partner"] if obj else []

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
class TermListStampAdmin(admin.ModelAdmin):
    list_display = ["version", "term_count", "loaded_at"]
    readonly_fields = ["version", "digest", "term_count", "loaded_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # `stopcsam reload_terms` checks the files and raises the version
