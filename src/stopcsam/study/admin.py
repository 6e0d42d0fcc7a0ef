from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import IntegrityError
from django.http import HttpRequest

from stopcsam.core.admin import CheckedActionsAdmin
from stopcsam.study import services
from stopcsam.study.exceptions import ProtocolError
from stopcsam.study.models import ProtocolVersion


class ProtocolVersionForm(forms.ModelForm):
    class Meta:
        model = ProtocolVersion
        fields = ["definition", "is_active"]

    def validate_constraints(self) -> None:
        """Not here: the only constraint the form's fields reach is "one active version",
        which refused every activation while a version was active ("Constraint ... is
        violated", a review finding). Saving a version as active deactivates the active one
        in the same transaction (services), and the database still holds the constraint; a
        key and version that exist are refused by clean_definition."""

    def clean_definition(self) -> Any:
        definition = self.cleaned_data["definition"]
        try:
            services.protocol_new(definition)
        except ProtocolError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return definition


@admin.register(ProtocolVersion)
class ProtocolVersionAdmin(CheckedActionsAdmin):
    """Coordinators and study admins edit a protocol by saving it as a new version: versions
    already used by participants never change under them."""

    form = ProtocolVersionForm
    # protocol_load says so when the version was saved by someone else meanwhile: the form,
    # shown again, then names it under the definition.
    saved_meanwhile_errors = (IntegrityError, ProtocolError)
    list_display = ["key", "version", "is_active", "created_at", "seed_commitment"]
    readonly_fields = ["key", "version", "seed_commitment", "created_at"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["definition", "is_active"]
        return ["key", "version", "seed_commitment", "created_at", "is_active"]

    def save_model(
        self, request: HttpRequest, obj: ProtocolVersion, form: Any, change: bool
    ) -> None:
        actor = request.user.audit_ref  # type: ignore[union-attr]
        if change:
            if form.cleaned_data.get("is_active") and "is_active" in form.changed_data:
                services.protocol_activate(version=obj, actor=actor)
            return
        saved = services.protocol_load(
            definition=form.cleaned_data["definition"],
            activate=form.cleaned_data["is_active"],
            actor=actor,
        )
        obj.pk = saved.pk

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return list(self.readonly_fields)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
