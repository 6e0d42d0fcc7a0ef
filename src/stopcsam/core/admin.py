"""The base of every admin of the project, and Django's own re-registered on it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import ActionLocation
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import BadRequest, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse


class CheckedActionsAdmin(admin.ModelAdmin):
    """An action's selection holds ids as the form sent them, and Django filters by them as
    they came: "abc", a number past the column's range or a NUL was a 500 (a review finding).
    A selection that is not all ids is refused as Django refuses a tampered one on an
    object's page: 400."""

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
