"""The coordinators' admin: a coordinator manages the clinical staff of their own site and
nothing beyond; no admin page shows a one-time-code secret or deletes a participant."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from stopcsam.accounts.models import (
    Participant,
    Role,
    Site,
    StaffDeviceCookie,
    StaffInvitation,
    StaffUser,
)
from stopcsam.conftest import STAFF_PASSWORD, OtherSave, ParticipantPersona, StaffPersona
from stopcsam.core.models import AuditEvent

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


def test_changes_to_staff_and_invitations_in_the_admin_are_audited(
    coordinator: StaffPersona, therapist: StaffPersona, staff_client: StaffClient
) -> None:
    """A new role, site or deactivation decides what a member of staff reads: the audit
    chain records who changed which fields, never their values' free text (a review finding:
    only the invitation was audited, a later change to the account in the admin was not)."""
    from stopcsam.core.models import AuditEvent

    client = staff_client(coordinator)
    # As a browser sends it: the languages unchanged, with their initial value (a callable
    # default gives the field a hidden initial input).
    languages = json.dumps(therapist.user.languages)
    same = {"languages": languages, "initial-languages": languages}
    promoted = {"role": Role.SUPERVISOR, "display_name": "Dr. Anna", **same}
    assert change(client, therapist.user, **promoted) == 302
    assert StaffUser.objects.get(pk=therapist.user.pk).role == Role.SUPERVISOR
    event = AuditEvent.objects.get(action="staff.changed")
    assert event.actor == coordinator.user.audit_ref
    assert event.subject == therapist.user.audit_ref
    assert event.detail == {
        "fields": ["display_name", "role"],
        "role": Role.SUPERVISOR,
        "site": "DE",
        "active": True,
    }
    assert "Anna" not in str(event.detail)
    form = {"role": Role.THERAPIST, "site": coordinator.user.site_id, "languages": '["de"]'}
    assert client.post("/admin/accounts/staffinvitation/add/", form).status_code == 302
    invitation = StaffInvitation.objects.get()
    changed = {**form, "role": Role.SUPERVISOR, "initial-languages": form["languages"]}
    url = f"/admin/accounts/staffinvitation/{invitation.pk}/change/"
    assert client.post(url, changed).status_code == 302
    event = AuditEvent.objects.get(action="staff.invitation_changed")
    assert event.actor == coordinator.user.audit_ref
    assert event.subject == f"invitation:{invitation.pk}"
    assert event.detail == {"fields": ["role"], "role": Role.SUPERVISOR, "site": "DE"}
    # Withdrawn (deleted): who took back which invitation, also from the list's bulk action.
    delete = f"/admin/accounts/staffinvitation/{invitation.pk}/delete/"
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not StaffInvitation.objects.exists()
    withdrawn = AuditEvent.objects.get(action="staff.invitation_withdrawn")
    assert withdrawn.actor == coordinator.user.audit_ref
    assert withdrawn.subject == f"invitation:{invitation.pk}"
    assert withdrawn.detail == {"role": Role.SUPERVISOR, "site": "DE"}
    for _ in range(2):
        assert client.post("/admin/accounts/staffinvitation/add/", form).status_code == 302
    bulk = {
        "action": "delete_selected",
        "_selected_action": [
            str(pk) for pk in StaffInvitation.objects.values_list("pk", flat=True)
        ],
        "post": "yes",
    }
    assert client.post("/admin/accounts/staffinvitation/", bulk).status_code == 302
    assert not StaffInvitation.objects.exists()
    assert AuditEvent.objects.filter(action="staff.invitation_withdrawn").count() == 3


def test_a_username_cannot_be_changed_to_another_accounts_in_other_letter_case(
    coordinator: StaffPersona, therapist: StaffPersona, staff_client: StaffClient
) -> None:
    """Usernames are one in any letter case (a login looks them up so): the admin saved
    "CLARA" beside "clara", and a login as either then found the same one of the two, the
    other locked out for good (a review finding)."""
    client = staff_client(coordinator)
    taken = coordinator.user.username.upper()
    assert change(client, therapist.user, username=taken) == 200  # the form refuses
    assert StaffUser.objects.get(pk=therapist.user.pk).username == "anna"


@pytest.mark.parametrize("languages", ['"de"', "5", '{"de": 1}', '["de", 5]', '["xx"]'])
def test_languages_are_a_list_of_known_language_codes(
    coordinator: StaffPersona,
    therapist: StaffPersona,
    staff_client: StaffClient,
    languages: str,
) -> None:
    """The admin took any JSON for a member of staff's languages: a number there made every
    booking check of the site ("language in staff.languages") a 500 (a review finding)."""
    client = staff_client(coordinator)
    response = client.post(
        f"/admin/accounts/staffuser/{therapist.user.pk}/change/",
        {
            "username": therapist.user.username,
            "role": therapist.user.role,
            "site": therapist.user.site_id,
            "languages": languages,
            "is_active": "on",
        },
    )
    assert response.status_code == 200  # the form refuses
    assert StaffUser.objects.get(pk=therapist.user.pk).languages == ["de", "en"]
    form = {"role": Role.THERAPIST, "site": coordinator.user.site_id, "languages": languages}
    assert client.post("/admin/accounts/staffinvitation/add/", form).status_code == 200
    assert not StaffInvitation.objects.exists()


def test_a_coordinator_cannot_change_or_withdraw_an_invitation_they_could_not_give(
    coordinator: StaffPersona, staff_client: StaffClient
) -> None:
    """A study administrator's invitation of a coordinator at the site: the site's coordinator
    could turn it into a therapist's, or delete it (a review finding). Accounts were guarded
    so; invitations were not."""
    from stopcsam.accounts.services import staff_invitation_create

    invitation, _token = staff_invitation_create(
        role=Role.COORDINATOR, site=coordinator.user.site, languages=["de"]
    )
    client = staff_client(coordinator)
    url = f"/admin/accounts/staffinvitation/{invitation.pk}/"
    form = {"role": Role.THERAPIST, "site": coordinator.user.site_id, "languages": '["de"]'}
    assert client.post(f"{url}change/", form).status_code == 403
    assert client.post(f"{url}delete/", {"post": "yes"}).status_code == 403
    selected = {"action": "delete_selected", "_selected_action": [invitation.pk], "post": "yes"}
    client.post("/admin/accounts/staffinvitation/", selected)
    assert StaffInvitation.objects.get().role == Role.COORDINATOR


def test_a_deactivated_account_is_signed_out_for_good(
    therapist: StaffPersona, coordinator: StaffPersona, staff_client: StaffClient
) -> None:
    """Deactivation only hid the sessions (an inactive account is nobody): activated again,
    the same day, every browser signed in before was back in, a stolen session too."""
    signed_in = staff_client(therapist)
    assert signed_in.get("/en/staff/").status_code == 200
    admin = staff_client(coordinator)
    assert change(admin, therapist.user, is_active="") == 302
    assert signed_in.get("/en/staff/").status_code == 302
    assert change(admin, therapist.user) == 302
    therapist.user.refresh_from_db()
    assert therapist.user.is_active
    assert signed_in.get("/en/staff/").status_code == 302
    assert admin.get("/en/staff/").status_code == 200  # nobody else is signed out


@pytest.mark.parametrize("zone", ["Europe/Berlim", "America/Argentina", "UTC+1", "x" * 64])
def test_a_sites_time_zone_must_be_one(
    coordinator: StaffPersona, site_es: Site, staff_client: StaffClient, zone: str
) -> None:
    """Any text was saved as a site's time zone: its staff then read every time in UTC,
    an hour or two off, with nothing to tell them (a review finding)."""
    StaffUser.objects.filter(pk=coordinator.user.pk).update(role=Role.STUDY_ADMIN)
    client = staff_client(coordinator)
    form = {"code": "ES", "name": "Madrid", "country": "ES", "languages": '["es"]'}
    url = f"/admin/accounts/site/{site_es.pk}/change/"
    response = client.post(url, {**form, "time_zone": zone})
    assert response.status_code == 200 and "time zone" in response.content.decode()
    site_es.refresh_from_db()
    assert site_es.time_zone == "Europe/Madrid"
    assert client.post(url, {**form, "time_zone": "Atlantic/Canary"}).status_code == 302
    site_es.refresh_from_db()
    assert site_es.time_zone == "Atlantic/Canary"


def _act(client: Client, action: str, *users: StaffUser) -> Client:
    client.post(
        "/admin/accounts/staffuser/",
        {"action": action, "_selected_action": [user.pk for user in users]},
    )
    return client


def _lock(user: StaffUser) -> None:
    StaffUser.objects.filter(pk=user.pk).update(
        failed_logins=9, locked_until=timezone.now() + timedelta(hours=1)
    )


def _login(persona: StaffPersona) -> int:
    return (
        Client()
        .post(
            "/en/staff/login/",
            {
                "username": persona.user.username,
                "password": STAFF_PASSWORD,
                "otp_token": persona.current_code(),
            },
        )
        .status_code
    )


def test_a_coordinator_unlocks_a_locked_out_member_of_their_site(
    coordinator: StaffPersona, therapist: StaffPersona, staff_client: StaffClient
) -> None:
    _lock(therapist.user)
    assert _login(therapist) == 400
    _act(staff_client(coordinator), "unlock", therapist.user)
    therapist.user.refresh_from_db()
    assert therapist.user.locked_until is None and therapist.user.failed_logins == 0
    event = AuditEvent.objects.get(action="staff.unlocked")
    assert event.actor == coordinator.user.audit_ref
    assert event.subject == therapist.user.audit_ref and event.detail == {"locked": True}
    assert _login(therapist) == 302


def test_a_coordinator_resets_the_two_factor_login_of_a_member_of_their_site(
    coordinator: StaffPersona, therapist: StaffPersona, staff_client: StaffClient
) -> None:
    signed_in = staff_client(therapist)
    page = _act(staff_client(coordinator), "two_factor_reset", therapist.user).get(
        "/admin/accounts/staffuser/"
    )
    assert "Two-factor login is reset for 1 account" in page.content.decode()
    assert not TOTPDevice.objects.filter(user=therapist.user).exists()
    assert not StaffDeviceCookie.objects.filter(user=therapist.user).exists()
    assert signed_in.get("/en/staff/").status_code == 302  # signed out
    # The old authenticator's code no longer signs in: a new one is to be set up.
    response = Client().post(
        "/en/staff/login/",
        {
            "username": therapist.user.username,
            "password": STAFF_PASSWORD,
            "otp_token": therapist.current_code(),
        },
    )
    assert response["Location"] == "/en/staff/enrol/"
    event = AuditEvent.objects.get(action="staff.two_factor_reset")
    assert event.actor == coordinator.user.audit_ref
    assert event.subject == therapist.user.audit_ref and event.detail == {"devices": 1}


@pytest.mark.parametrize("action", ["unlock", "two_factor_reset"])
def test_a_coordinator_of_another_site_cannot_unlock_or_reset(
    coordinator: StaffPersona,
    therapist_es: StaffPersona,
    supervisor: StaffPersona,
    staff_client: StaffClient,
    action: str,
) -> None:
    _lock(therapist_es.user)
    StaffUser.objects.filter(pk=supervisor.user.pk).update(role=Role.COORDINATOR)
    peer = StaffUser.objects.get(pk=supervisor.user.pk)  # a coordinator of the same site
    _lock(peer)
    _act(staff_client(coordinator), action, therapist_es.user, peer)
    for user in (therapist_es.user, peer):
        user.refresh_from_db()
        assert user.locked_until is not None
        assert TOTPDevice.objects.filter(user=user).exists()
    assert not AuditEvent.objects.filter(action__in=["staff.unlocked", "staff.two_factor_reset"])


def test_a_coordinator_cannot_reset_their_own_two_factor_login(
    coordinator: StaffPersona, staff_client: StaffClient
) -> None:
    client = _act(staff_client(coordinator), "two_factor_reset", coordinator.user)
    assert TOTPDevice.objects.filter(user=coordinator.user).exists()
    assert client.get("/admin/").status_code == 200


def test_after_a_reset_the_next_login_sets_up_a_new_authenticator(
    coordinator: StaffPersona, therapist: StaffPersona, staff_client: StaffClient
) -> None:
    _act(staff_client(coordinator), "two_factor_reset", therapist.user)
    client = Client()
    asked = client.post(
        "/en/staff/login/",
        {"username": therapist.user.username, "password": STAFF_PASSWORD, "otp_token": ""},
    )
    assert asked.status_code == 302 and asked["Location"] == "/en/staff/enrol/"
    page = client.get("/en/staff/enrol/")
    assert page.status_code == 200 and b"<svg" in page.content
    key = base64.b32decode(page.context["totp_secret"])
    wrong = client.post("/en/staff/enrol/", {"otp_token": "12"})
    assert wrong.status_code == 400 and "otp_token" in wrong.context["form"].errors
    done = client.post("/en/staff/enrol/", {"otp_token": f"{TOTP(key).token():06d}"})
    assert done.status_code == 302
    assert client.get("/en/staff/").status_code == 200  # signed in, with the new code
    assert TOTPDevice.objects.filter(user=therapist.user, confirmed=True).count() == 1
    assert AuditEvent.objects.filter(
        action="staff.two_factor_enrolled", subject=therapist.user.audit_ref
    ).exists()
    # Once only: the page is gone, and a wrong password never reaches it.
    assert client.get("/en/staff/enrol/").status_code == 302


def test_an_account_with_an_authenticator_never_reaches_the_enrolment(
    therapist: StaffPersona,
) -> None:
    client = Client()
    response = client.post(
        "/en/staff/login/",
        {"username": therapist.user.username, "password": STAFF_PASSWORD, "otp_token": ""},
    )
    assert response.status_code == 400
    assert client.get("/en/staff/enrol/").status_code == 302


def test_a_username_taken_meanwhile_is_the_fields_error_not_a_500(
    coordinator: StaffPersona,
    therapist: StaffPersona,
    staff_client: StaffClient,
    other_save: OtherSave,
) -> None:
    """Two coordinators renaming two accounts to one name at once: the second save met the
    database's constraint, a 500 (a review finding)."""
    client = staff_client(coordinator)
    other_save.hide_from(StaffUser, "clean")  # its own look for the name in any letter case
    other = StaffUser.objects.create(
        username="Bernd", role=Role.THERAPIST, site=coordinator.user.site
    )
    other_save.commit(other)
    response = client.post(
        f"/admin/accounts/staffuser/{therapist.user.pk}/change/",
        {
            "username": "bernd",
            "display_name": "",
            "role": Role.THERAPIST,
            "site": therapist.user.site_id,
            "languages": '["de"]',
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["username"] == ["This username is taken."]
    therapist.user.refresh_from_db()
    assert therapist.user.username == "anna"
    assert not AuditEvent.objects.filter(action="staff.changed").exists()


def test_a_site_code_taken_meanwhile_is_the_fields_error_not_a_500(
    coordinator: StaffPersona, site_es: Site, staff_client: StaffClient, other_save: OtherSave
) -> None:
    StaffUser.objects.filter(pk=coordinator.user.pk).update(role=Role.STUDY_ADMIN)
    client = staff_client(coordinator)
    other_save.commit(site_es)
    form = {"code": "ES", "name": "Sevilla", "time_zone": "Europe/Madrid", "languages": '["es"]'}
    response = client.post("/admin/accounts/site/add/", form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {"code": ["Site with this Code already exists."]}
    assert list(Site.objects.values_list("name", flat=True).order_by("name")) == [
        "Berlin",
        "Madrid",
    ]
