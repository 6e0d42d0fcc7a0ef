"""The base of every admin of the project, and Django's own re-registered on it."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import ActionLocation
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import BadRequest, ValidationError
from django.db import IntegrityError, models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

log = logging.getLogger("stopcsam.admin")

# Shown when the form's own checks, run again, do not name the field that clashed.
SAVED_MEANWHILE = _(
    "Someone else saved a change at the same moment that conflicts with yours, so nothing "
    "was saved. Please check the form and save again."
)


class CheckedActionsAdmin(admin.ModelAdmin):
    """An action's selection holds ids as the form sent them, and Django filters by them as
    they came: "abc", a number past the column's range or a NUL was a 500 (a review finding).
    A selection that is not all ids is refused as Django refuses a tampered one on an
    object's page: 400.

    Two members of staff saving the same unique value at once both passed the form's checks,
    and the second save's IntegrityError was a 500 (a review finding). The admin's
    transaction is rolled back, so nothing of that save is kept, and the form is shown again:
    its checks now see the other save and name the field with the model's own message
    ("... already exists"); where they find nothing, SAVED_MEANWHILE says what happened.
    """

    # What a save raises when it meets a change committed after the form's checks; an admin
    # whose service turns that into a domain error adds the error here.
    saved_meanwhile_errors: tuple[type[Exception], ...] = (IntegrityError,)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except self.saved_meanwhile_errors as exc:
            # Only a save of the form is shown again; an action is not run twice.
            if not getattr(request, _SAVING, False) or getattr(request, _SAVED_MEANWHILE, False):
                raise
            # By kind only: the database's text quotes the value.
            log.warning(
                "a save of %s met a change made meanwhile (%s); the form is shown again",
                self.model._meta.label,
                type(exc).__name__,
            )
        setattr(request, _SAVED_MEANWHILE, True)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        setattr(request, _SAVING, True)
        return super().save_form(request, form, change)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if getattr(request, _SAVED_MEANWHILE, False):
            return type(form.__name__, (_SavedMeanwhileForm, form), {})
        return form

    def response_action(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        action_location: ActionLocation = ActionLocation.CHANGE_LIST,
    ) -> HttpResponse | None:
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        if not all(_is_id(self.model, value) for value in selected):
            raise BadRequest("an action's selection holds a value that is no id")
        return super().response_action(request, queryset, action_location)


# Marks on the request: its form is being saved; its save met a change made meanwhile.
_SAVING = "_stopcsam_saving"
_SAVED_MEANWHILE = "_stopcsam_saved_meanwhile"


class _SavedMeanwhileForm(forms.ModelForm):
    """The form of a save that met a change made meanwhile: never valid, so that showing it
    again saves nothing, with SAVED_MEANWHILE when its own checks find nothing wrong."""

    def full_clean(self) -> None:
        super().full_clean()
        if self.is_bound and not self.errors:
            self.add_error(None, SAVED_MEANWHILE)


def _is_id(model: type[models.Model], value: str) -> bool:
    pk = model._meta.pk
    assert pk is not None
    if "\x00" in value:  # PostgreSQL cannot compare text with a NUL in it
        return False
    try:
        pk.run_validators(pk.to_python(value))
    except ValidationError:
        return False
    return True


admin.site.unregister(Group)


@admin.register(Group)
class CheckedGroupAdmin(CheckedActionsAdmin, GroupAdmin):
    pass
