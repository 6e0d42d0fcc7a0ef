"""A member of staff changes their password: the old one is asked for, the validators apply,
the other devices are signed out, and this browser stays signed in with a new device cookie."""

from __future__ import annotations

import pytest
from django.test import Client

from stopcsam.accounts.models import StaffDeviceCookie
from stopcsam.accounts.tests.test_staff_device_cookie import COOKIE, _browser, _login
from stopcsam.conftest import STAFF_PASSWORD, StaffPersona
from stopcsam.core.models import AuditEvent

pytestmark = pytest.mark.django_db
PAGE = "/en/staff/password/"
NEW = "a-new-and-unusual-passphrase"


def _change(client: Client, old: str = STAFF_PASSWORD, new: str = NEW, again: str = NEW) -> int:
    form = {"old_password": old, "new_password1": new, "new_password2": again}
    return client.post(PAGE, form).status_code


def test_a_new_password_signs_the_other_devices_out_and_keeps_this_one(
    therapist: StaffPersona,
) -> None:
    laptop, phone = _browser(therapist), _browser(therapist)
    old_cookie = laptop.cookies[COOKIE].value
    assert laptop.get(PAGE).status_code == 200
    assert _change(laptop) == 302
    assert laptop.get("/en/staff/").status_code == 200  # still signed in here
    assert phone.get("/en/staff/").status_code == 302  # signed out there
    assert laptop.cookies[COOKIE].value != old_cookie  # a new device cookie here
    assert StaffDeviceCookie.objects.filter(user=therapist.user).count() == 1
    assert _login(Client(), therapist) == 400  # the old password no longer works
    assert _login(Client(), therapist, password=NEW) == 302
    assert AuditEvent.objects.filter(action="staff.password_changed").count() == 1


@pytest.mark.parametrize(
    ("old", "new", "again", "message"),
    [
        ("not the password", NEW, NEW, "Your old password was entered incorrectly"),
        (STAFF_PASSWORD, NEW, NEW + "x", "two password fields didn"),
        (STAFF_PASSWORD, "short", "short", "too short"),
        (STAFF_PASSWORD, "123456789012345", "123456789012345", "entirely numeric"),
    ],
)
def test_a_refused_change_says_why_and_changes_nothing(
    therapist: StaffPersona, old: str, new: str, again: str, message: str
) -> None:
    laptop = _browser(therapist)
    response = laptop.post(
        PAGE, {"old_password": old, "new_password1": new, "new_password2": again}
    )
    assert response.status_code == 400 and message in response.content.decode()
    assert _login(Client(), therapist) == 302  # the password is unchanged
    assert not AuditEvent.objects.filter(action="staff.password_changed").exists()


def test_the_page_is_for_verified_staff_and_speaks_german(therapist: StaffPersona) -> None:
    assert Client().get(PAGE).status_code == 302  # to the login
    laptop = _browser(therapist)
    page = laptop.get("/de/staff/password/").content.decode()
    assert "Passwort ändern" in page
    response = laptop.post(
        "/de/staff/password/",
        {"old_password": "falsch", "new_password1": NEW, "new_password2": NEW},
    )
    assert (
        response.status_code == 400 and "Das alte Passwort war falsch" in response.content.decode()
    )


def test_the_old_password_is_not_guessed_without_limit(
    therapist: StaffPersona, settings: object
) -> None:
    """Wrong old passwords count as failed logins and lock alike (a review finding: a session
    left signed in could guess the password through this form without limit)."""
    free = settings.STAFF_LOGIN_FREE_ATTEMPTS  # type: ignore[attr-defined]
    hijacked = _browser(therapist)
    for n in range(free):
        assert _change(hijacked, old=f"guess number {n}") == 400
    response = hijacked.post(
        PAGE, {"old_password": STAFF_PASSWORD, "new_password1": NEW, "new_password2": NEW}
    )
    assert response.status_code == 400 and "paused for a while" in response.content.decode()
    assert _login(Client(), therapist) == 302  # unchanged, and strangers were not locked out
    failed = AuditEvent.objects.filter(action="staff.password_change_failed")
    assert failed.count() == free and not failed.filter(detail__icontains="guess").exists()


def test_a_new_password_refused_by_the_validators_checks_no_old_password(
    therapist: StaffPersona,
) -> None:
    """The old password is checked only once the new one is acceptable: nothing is learnt
    about it from a form that fails for another reason."""
    laptop = _browser(therapist)
    for _ in range(10):
        assert _change(laptop, old="a wrong guess", new="short", again="short") == 400
    assert not AuditEvent.objects.filter(action="staff.password_change_failed").exists()
    assert _change(laptop) == 302


@pytest.mark.parametrize("language", ["de", "cs", "pt", "es"])
def test_a_too_short_password_is_refused_in_the_readers_language(
    therapist: StaffPersona, language: str
) -> None:
    """Django's own Czech and Portuguese catalogues lack its "too short" message, which the
    password pages then showed in English (a review finding)."""
    laptop = _browser(therapist)
    response = laptop.post(
        f"/{language}/staff/password/",
        {"old_password": STAFF_PASSWORD, "new_password1": "kurz", "new_password2": "kurz"},
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert "12" in page and "This password is too short" not in page


def test_a_password_longer_than_the_login_takes_is_refused(therapist: StaffPersona) -> None:
    """The login form takes at most 256 characters: a longer new password was saved, and its
    owner could never log in with it again (a review finding)."""
    laptop = _browser(therapist)
    too_long = "a-long-and-unusual-passphrase " * 9  # 270 characters
    assert _change(laptop, new=too_long, again=too_long) == 400
    assert _login(Client(), therapist) == 302  # the password is unchanged
    longest = too_long[:256]
    assert _change(laptop, new=longest, again=longest) == 302
    assert _login(Client(), therapist, password=longest) == 302
