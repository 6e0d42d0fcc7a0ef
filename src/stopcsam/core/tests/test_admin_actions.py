"""Every admin's actions with ids that are no ids: a clear 400, never a 500. Only a verified
coordinator can send them, but a tampered form (or a stale one) was a 500 (a review finding):
Django filters the selection by its ids as they came."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Model
from django.test import Client, RequestFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stopcsam.conftest import StaffPersona
from stopcsam.core.admin import CheckedActionsAdmin

pytestmark = pytest.mark.django_db

MODELS = sorted(admin.site._registry, key=lambda model: model._meta.label)
# Apps whose admins do not take the base yet (accounts/admin.py was another change's to make
# when this was written): skipped until they do.
AWAITING_BASE: set[str] = set()
CHECKED = [model for model in MODELS if model._meta.app_label not in AWAITING_BASE]


def _changelist(model: type[Model]) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def _awaiting(model: type[Model]) -> Any:
    mark = pytest.mark.skip(reason="accounts/admin.py awaits CheckedActionsAdmin")
    return pytest.param(model, marks=mark if model not in CHECKED else (), id=model._meta.label)


BAD_IDS = ["abc", "99999999999999999999999", "-99999999999999999999999", "1\x00", "1.5", ""]


@pytest.fixture
def coordinator_client(
    coordinator: StaffPersona, staff_client: Callable[[StaffPersona], Client]
) -> Client:
    """A verified coordinator: every admin, with every permission (StaffUser.has_perm)."""
    client = staff_client(coordinator)
    client.raise_request_exception = False
    return client


def test_every_admin_checks_its_actions_ids() -> None:
    """A new admin (or one of Django's, re-registered) gets the check by its base class."""
    unchecked = [
        type(model_admin).__name__
        for model, model_admin in admin.site._registry.items()
        if model in CHECKED and not isinstance(model_admin, CheckedActionsAdmin)
    ]
    assert unchecked == []


@pytest.mark.parametrize("model", [_awaiting(model) for model in MODELS])
@pytest.mark.parametrize("bad", BAD_IDS)
def test_an_action_on_ids_that_are_no_ids_is_a_400(
    coordinator: StaffPersona, coordinator_client: Client, model: type[Model], bad: str
) -> None:
    changelist = _changelist(model)
    request = RequestFactory().post(changelist)
    request.user = coordinator.user
    offered = list(admin.site._registry[model].get_actions(request))
    for form in (
        {"index": "0", ACTION_CHECKBOX_NAME: ["1", bad]},
        {"post": "yes", ACTION_CHECKBOX_NAME: [bad]},
        {"index": "0", "select_across": "1", ACTION_CHECKBOX_NAME: bad},
    ):
        for action in offered or ["delete_selected"]:
            page = coordinator_client.post(changelist, {"action": action, **form})
            assert page.status_code == (400 if offered else 200), (action, form)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changelist=st.sampled_from([_changelist(model) for model in CHECKED]),
    action=st.sampled_from(["delete_selected", "", "nope", "delete_selected\x00"]) | st.text(),
    ids=st.lists(st.text(max_size=30) | st.integers().map(str), max_size=3),
    select_across=st.sampled_from(["0", "1", "", "yes"]) | st.text(max_size=5),
    index=st.sampled_from(["0", "1", "-1", "x", "99999999999999999999"]),
)
def test_odd_actions_on_every_admin_are_never_a_500(
    coordinator_client: Client,
    changelist: str,
    action: str,
    ids: list[str],
    select_across: str,
    index: str,
) -> None:
    form = {"action": action, "index": index, "select_across": select_across}
    page = coordinator_client.post(changelist, {**form, ACTION_CHECKBOX_NAME: ids})
    assert page.status_code < 500
