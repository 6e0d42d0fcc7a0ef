"""Coordinators manage partners and keys in the admin; the key is shown once, then only its
prefix; revoking is an admin action, and keys cannot be deleted."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client

from stopcsam.conftest import StaffPersona
from stopcsam.core.models import AuditEvent
from stopcsam.outreach import services
from stopcsam.outreach.models import ApiKey

pytestmark = pytest.mark.django_db


def test_a_coordinator_creates_a_key_that_is_shown_once_and_works(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    partner = services.partner_create(name="Forum", campaign_code="forum")
    client = staff_client(coordinator)
    response = client.post(
        "/admin/outreach/apikey/add/",
        {"partner": partner.pk, "label": "production", "rate_per_minute": 100},
        follow=True,
    )
    shown = re.search(r"(sk_[0-9a-f]{8}_[A-Za-z0-9_-]+)", response.content.decode())
    assert shown, "the new key is shown to the coordinator"
    key = shown.group(1)
    api = Client().post(
        "/api/v1/deterrence/check",
        data='{"query": "demoword"}',
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )
    assert api.status_code == 200 and api.json()["help_url"].endswith("?c=forum")
    listing = client.get("/admin/outreach/apikey/").content.decode()
    assert key not in listing and ApiKey.objects.get().prefix in listing


def test_revoking_from_the_admin_is_audited_and_keys_cannot_be_deleted(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    partner = services.partner_create(name="Forum", campaign_code="forum")
    api_key, _key = services.api_key_create(partner=partner)
    client = staff_client(coordinator)
    client.post(
        "/admin/outreach/apikey/",
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert AuditEvent.objects.filter(action="outreach.api_key_revoked").count() == 1
    response = client.get(f"/admin/outreach/apikey/{api_key.pk}/delete/")
    assert response.status_code == 403


def test_a_partner_is_never_deleted_with_its_keys(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    """Deleting a partner took its keys, unrevoked and unaudited: it is refused, in the
    admin and in the database; keys are revoked instead."""
    from django.db.models import ProtectedError

    partner = services.partner_create(name="Forum", campaign_code="forum")
    services.api_key_create(partner=partner)
    client = staff_client(coordinator)
    assert client.get(f"/admin/outreach/partner/{partner.pk}/delete/").status_code == 403
    client.post(f"/admin/outreach/partner/{partner.pk}/delete/", {"post": "yes"})
    assert ApiKey.objects.filter(partner=partner, revoked_at=None).count() == 1
    with pytest.raises(ProtectedError):
        partner.delete()


def test_other_staff_cannot_reach_the_admin(
    therapist: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    response = staff_client(therapist).get("/admin/outreach/apikey/")
    assert response.status_code == 302
