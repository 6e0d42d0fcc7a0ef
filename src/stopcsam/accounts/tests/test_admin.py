"""The coordinators' admin: a coordinator manages the clinical staff of their own site and
nothing beyond; no admin page shows a one-time-code secret or deletes a participant."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from stopcsam.accounts.models import Participant, Role, Site, StaffInvitation, StaffUser
from stopcsam.conftest import STAFF_PASSWORD, ParticipantPersona, StaffPersona

pytestmark = pytest.mark.django_db
StaffClient = Callable[..., Client]


def change(client: Client, user: StaffUser, **fields: object) -> int:
    form = {
        "username": user.username,
        "display_name": "",
        "role": user.role,
        "site": user.site_id,
        "languages": '["de"]',
        "is_active": "on",
        **fields,
    }
    return client.post(f"/admin/accounts/staffuser/{user.pk}/change/", form).status_code


def test_a_coordinator_cannot_give_themselves_another_role(
    coordinator: StaffPersona, staff_client: StaffClient
) -> None:
    change(staff_client(coordinator), coordinator.user, role=Role.STUDY_ADMIN)
    coordinator.user.refresh_from_db()
    assert coordinator.user.role == Role.COORDINATOR


def test_a_coordinator_changes_their_own_sites_clinical_staff_only(
    coordinator: StaffPersona,
    therapist: StaffPersona,
    therapist_es: StaffPersona,
    staff_client: StaffClient,
) -> None:
    client = staff_client(coordinator)
    listing = client.get("/admin/accounts/staffuser/").content.decode()
    assert therapist.user.username in listing and therapist_es.user.username not in listing
    assert change(client, therapist_es.user, site=coordinator.user.site_id) in (403, 404, 302)
    therapist_es.user.refresh_from_db()
    assert therapist_es.user.site.code == "ES" and therapist_es.user.is_active
    # Their own site's therapist: a supervisor now, but never a study administrator.
    assert change(client, therapist.user, role=Role.SUPERVISOR) == 302
    therapist.user.refresh_from_db()
    assert therapist.user.role == Role.SUPERVISOR
    assert change(client, therapist.user, role=Role.STUDY_ADMIN) == 200  # the form refuses
    therapist.user.refresh_from_db()
    assert therapist.user.role == Role.SUPERVISOR


def test_a_coordinator_invites_for_their_own_site_and_clinical_roles_only(
    coordinator: StaffPersona, site_es: object, staff_client: StaffClient
) -> None:
    client = staff_client(coordinator)
    form = {"role": Role.STUDY_ADMIN, "site": coordinator.user.site_id, "languages": '["de"]'}
    assert client.post("/admin/accounts/staffinvitation/add/", form).status_code == 200
    elsewhere = {"role": Role.THERAPIST, "site": site_es.pk, "languages": '["es"]'}  # type: ignore[attr-defined]
    assert client.post("/admin/accounts/staffinvitation/add/", elsewhere).status_code == 200
    assert not StaffInvitation.objects.exists()
    mine = {"role": Role.THERAPIST, "site": coordinator.user.site_id, "languages": '["de"]'}
    assert client.post("/admin/accounts/staffinvitation/add/", mine).status_code == 302
    assert StaffInvitation.objects.get().role == Role.THERAPIST


def test_no_admin_page_shows_a_one_time_code_secret(
    coordinator: StaffPersona, therapist: StaffPersona, staff_client: StaffClient
) -> None:
    client = staff_client(coordinator)
    page = client.get(f"/admin/otp_totp/totpdevice/{therapist.device.pk}/change/")
    assert page.status_code == 404
    assert therapist.device.key not in client.get("/admin/").content.decode()


def test_the_admin_deletes_no_participant(
    coordinator: StaffPersona, participant: ParticipantPersona, staff_client: StaffClient
) -> None:
    pk = participant.participant.pk
    staff_client(coordinator).post(f"/admin/accounts/participant/{pk}/delete/", {"post": "yes"})
    assert Participant.objects.filter(pk=pk).exists()


def test_sites_are_the_study_administrators_to_change(
    coordinator: StaffPersona, site_es: Site, staff_client: StaffClient
) -> None:
    client = staff_client(coordinator)
    form = {"code": "ES", "name": "Madrid", "country": "ES", "time_zone": "Pacific/Kiritimati"}
    client.post(f"/admin/accounts/site/{site_es.pk}/change/", {**form, "languages": '["es"]'})
    site_es.refresh_from_db()
    assert site_es.time_zone == "Europe/Madrid"
    listing = client.get("/admin/accounts/site/").content.decode()
    assert "Madrid" not in listing and coordinator.user.site.name in listing


def test_the_admin_changes_no_password_and_tests_no_guess(
    coordinator: StaffPersona, staff_client: StaffClient
) -> None:
    """Django's own password change in the admin checked the old password without limit,
    counting no failure, and left the other devices signed in: ours does neither (a review
    finding)."""
    client = staff_client(coordinator)
    before = StaffUser.objects.get(pk=coordinator.user.pk).password
    new = "a-new-and-unusual-passphrase"
    for old in ("a wrong guess", STAFF_PASSWORD):
        response = client.post(
            "/admin/password_change/",
            {"old_password": old, "new_password1": new, "new_password2": new},
        )
        assert response.status_code == 302
        assert response["Location"] == "/en/staff/password/"
    assert client.get("/admin/password_change/done/")["Location"] == "/en/staff/password/"
    assert StaffUser.objects.get(pk=coordinator.user.pk).password == before
