from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.test import Client

from stopcsam.conftest import StaffPersona
from stopcsam.core.models import AuditEvent
from stopcsam.study.demo import demo_definition
from stopcsam.study.models import ProtocolVersion

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
