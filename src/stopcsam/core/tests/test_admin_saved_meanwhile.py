"""Two members of staff save the same unique value at once: both forms pass their checks,
and the second save met the database's constraint, a 500 (a review finding). Every admin
(by its base class) shows the form again with the field's own error, and saves nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError
from django.test import Client

from stopcsam.conftest import OtherSave, StaffPersona

pytestmark = pytest.mark.django_db
ADD = "/admin/auth/group/add/"


def test_a_name_saved_meanwhile_is_the_fields_error_and_nothing_is_saved(
    coordinator: StaffPersona, staff_client: Callable[..., Client], other_save: OtherSave
) -> None:
    client = staff_client(coordinator)
    other_save.commit(Group.objects.create(name="Reviewers"))
    response = client.post(ADD, {"name": "Reviewers"})
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors == {"name": ["Group with this Name already exists."]}
    assert Group.objects.count() == 1


def test_a_clash_the_checks_cannot_name_is_said_and_nothing_is_saved(
    coordinator: StaffPersona,
    staff_client: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The row that clashed is gone by the time the form is shown again (or the constraint is
    none a form checks): the form says what happened, and the next save goes through."""
    client = staff_client(coordinator)
    save = Group.save
    clashes = [IntegrityError("UNIQUE constraint failed")]

    def clashing_once(group: Group, *args: object, **kwargs: object) -> None:
        if clashes:
            raise clashes.pop()
        save(group, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Group, "save", clashing_once)
    response = client.post(ADD, {"name": "Reviewers"})
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "Someone else saved a change at the same moment that conflicts with yours, so nothing "
        "was saved. Please check the form and save again."
    ]
    assert not Group.objects.exists()
    assert client.post(ADD, {"name": "Reviewers"}).status_code == 302
    assert Group.objects.get().name == "Reviewers"


def test_the_form_error_is_in_the_staff_members_language(
    coordinator: StaffPersona,
    staff_client: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = staff_client(coordinator)

    def clashing(group: Group, *args: object, **kwargs: object) -> None:
        raise IntegrityError("UNIQUE constraint failed")

    monkeypatch.setattr(Group, "save", clashing)
    response = client.post(ADD, {"name": "Prüfer"}, headers={"accept-language": "de"})
    assert response.status_code == 200
    assert "gleichzeitig" in response.content.decode()
