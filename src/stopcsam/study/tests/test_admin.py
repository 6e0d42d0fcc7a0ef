from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.test import Client

from stopcsam.conftest import OtherSave, StaffPersona
from stopcsam.core.models import AuditEvent
from stopcsam.study.demo import demo_definition
from stopcsam.study.models import ProtocolVersion
from stopcsam.study.protocol import protocol_from_dict

pytestmark = pytest.mark.django_db
ADD = "/admin/study/protocolversion/add/"


def test_coordinators_add_a_protocol_version_in_the_admin(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    client = staff_client(coordinator)
    definition = {**demo_definition(), "version": "2026.2"}
    response = client.post(ADD, {"definition": json.dumps(definition), "is_active": "on"})
    assert response.status_code == 302
    version = ProtocolVersion.objects.get(version="2026.2")
    assert version.is_active and len(version.seed_commitment) == 64
    event = AuditEvent.objects.get(action="study.protocol_loaded")
    assert event.actor == coordinator.user.audit_ref
    assert event.detail["seed_commitment"] == version.seed_commitment


def test_a_broken_protocol_is_refused_in_the_admin_with_the_reason(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    broken = {**demo_definition(), "arms": [{"key": "solo", "label": "x"}]}
    response = staff_client(coordinator).post(ADD, {"definition": json.dumps(broken)})
    assert response.status_code == 200
    assert "a trial needs at least two arms" in response.content.decode()
    assert ProtocolVersion.objects.count() == 0


def test_the_sealed_seed_is_never_shown(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    from stopcsam.study.services import protocol_load

    version = protocol_load(definition=demo_definition())
    page = staff_client(coordinator).get(f"/admin/study/protocolversion/{version.pk}/change/")
    assert page.status_code == 200
    assert version.seed_commitment in page.content.decode()
    assert version.sealed_seed not in page.content.decode()


def test_a_version_that_exists_is_refused_in_the_admin_with_the_reason(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    """The same key and version saved again failed on the unique constraint: a server error
    (a review finding)."""
    from stopcsam.study.services import protocol_load

    protocol_load(definition=demo_definition())
    response = staff_client(coordinator).post(ADD, {"definition": json.dumps(demo_definition())})
    assert response.status_code == 200
    assert "exists already" in response.content.decode()
    assert ProtocolVersion.objects.count() == 1


def test_a_version_saved_meanwhile_is_refused_with_the_reason_not_a_500(
    coordinator: StaffPersona, staff_client: Callable[..., Client], other_save: OtherSave
) -> None:
    """Two coordinators saving the same new version at once: both passed the check, and the
    second save's ProtocolError (the database refused it) was a 500."""
    from stopcsam.study import services

    client = staff_client(coordinator)
    definition = {**demo_definition(), "version": "2026.3"}
    other_save.commit(services.protocol_load(definition=definition, activate=False))
    other_save.hide_from(services, "protocol_new", instead=protocol_from_dict)
    response = client.post(ADD, {"definition": json.dumps(definition), "is_active": "on"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["definition"] and "exists already" in errors["definition"][0]
    assert ProtocolVersion.objects.filter(version="2026.3").count() == 1
    assert not ProtocolVersion.objects.get(version="2026.3").is_active


def test_a_version_is_activated_in_the_admin_while_another_is_active(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    """The form checked "one active version" before the save deactivated the active one, and
    refused every activation with "Constraint ... is violated" (a review finding)."""
    from stopcsam.study.services import protocol_load

    first = protocol_load(definition=demo_definition())
    client = staff_client(coordinator)
    definition = {**demo_definition(), "version": "2026.4"}
    response = client.post(ADD, {"definition": json.dumps(definition), "is_active": "on"})
    assert response.status_code == 302
    active = ProtocolVersion.objects.filter(is_active=True)
    assert list(active.values_list("version", flat=True)) == ["2026.4"]
    change = f"/admin/study/protocolversion/{first.pk}/change/"
    assert client.post(change, {"is_active": "on"}).status_code == 302
    assert list(active.values_list("pk", flat=True)) == [first.pk]
