"""Device cookies (OWASP): failures from strangers lock the account for browsers without a
cookie, while a browser where the member of staff logged in before keeps logging in."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from unittest import mock

import pytest
from django.core import signing
from django.core.signing import b62_encode
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from stopcsam.accounts import services
from stopcsam.accounts.models import StaffDeviceCookie, StaffUser
from stopcsam.conftest import STAFF_PASSWORD, StaffPersona
from stopcsam.core.models import AuditEvent

pytestmark = pytest.mark.django_db
LOGIN = "/en/staff/login/"
COOKIE = "staff_device"
WRONG = "not the password"


def _fresh_code(persona: StaffPersona) -> str:
    """The current code, usable again: a test logs in more often than once a time step."""
    TOTPDevice.objects.filter(pk=persona.device.pk).update(last_t=-1)
    return persona.current_code()


def _login(client: Client, persona: StaffPersona, *, password: str = STAFF_PASSWORD) -> int:
    form = {
        "username": persona.user.username,
        "password": password,
        "otp_token": _fresh_code(persona),
    }
    return client.post(LOGIN, form).status_code


def _browser(persona: StaffPersona) -> Client:
    """The member of staff's own browser, after one good login."""
    client = Client()
    assert _login(client, persona) == 302
    assert COOKIE in client.cookies
    return client


def _lock_for_strangers(persona: StaffPersona) -> None:
    for _ in range(5):
        assert _login(Client(), persona, password=WRONG) == 400
    assert _login(Client(), persona) == 400  # the right password from a stranger: locked


def _account(persona: StaffPersona) -> StaffUser:
    return StaffUser.objects.get(pk=persona.user.pk)


def test_a_login_gives_a_long_lived_httponly_cookie(therapist: StaffPersona) -> None:
    client = Client()
    form = {"username": "anna", "password": STAFF_PASSWORD, "otp_token": _fresh_code(therapist)}
    morsel = client.post(LOGIN, form).cookies[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] in ("Strict", "Lax")
    assert morsel["path"] == "/"
    assert int(morsel["max-age"]) == 180 * 24 * 3600


def test_the_cookie_is_secure_when_the_site_is_https(
    therapist: StaffPersona, settings: object
) -> None:
    settings.SESSION_COOKIE_SECURE = True  # type: ignore[attr-defined]
    client = Client()
    form = {"username": "anna", "password": STAFF_PASSWORD, "otp_token": _fresh_code(therapist)}
    assert client.post(LOGIN, form).cookies[COOKIE]["secure"] is True


def test_the_cookie_lifetime_is_a_setting(therapist: StaffPersona, settings: object) -> None:
    settings.STAFF_DEVICE_COOKIE_DAYS = 30  # type: ignore[attr-defined]
    client = Client()
    form = {"username": "anna", "password": STAFF_PASSWORD, "otp_token": _fresh_code(therapist)}
    assert int(client.post(LOGIN, form).cookies[COOKIE]["max-age"]) == 30 * 24 * 3600


def test_a_stranger_locks_the_account_but_not_the_therapists_browser(
    therapist: StaffPersona,
) -> None:
    browser = _browser(therapist)
    _lock_for_strangers(therapist)
    assert _login(browser, therapist) == 302
    assert browser.get("/en/staff/").status_code == 200
    # Strangers stay locked out: the browser's login did not open the account for them.
    assert _account(therapist).locked_until is not None
    assert _login(Client(), therapist) == 400


def test_the_browser_can_log_in_again_and_again(therapist: StaffPersona) -> None:
    browser = _browser(therapist)
    _lock_for_strangers(therapist)
    for _ in range(3):
        assert _login(browser, therapist) == 302


def test_failures_from_a_known_browser_lock_that_browser_only(therapist: StaffPersona) -> None:
    browser = _browser(therapist)
    for _ in range(5):
        assert _login(browser, therapist, password=WRONG) == 400
    assert _login(browser, therapist) == 400  # this browser is locked now
    account = _account(therapist)
    assert account.failed_logins == 0 and account.locked_until is None
    assert _login(Client(), therapist) == 302  # another browser is not
    assert AuditEvent.objects.filter(action="staff.login_failed").count() == 5


def test_the_lock_of_a_browser_is_kept_on_the_server(therapist: StaffPersona) -> None:
    browser = _browser(therapist)
    for _ in range(5):
        _login(browser, therapist, password=WRONG)
    copy = Client()  # the same cookie in a fresh client: still locked
    copy.cookies[COOKIE] = browser.cookies[COOKIE].value
    assert _login(copy, therapist) == 400


def test_a_tampered_cookie_counts_as_a_stranger(therapist: StaffPersona) -> None:
    browser = _browser(therapist)
    value = browser.cookies[COOKIE].value
    tampered = value[:-1] + ("A" if value[-1] != "A" else "B")
    browser.cookies[COOKIE] = tampered
    assert _login(browser, therapist, password=WRONG) == 400
    assert _account(therapist).failed_logins == 1  # counted against the account
    _lock_for_strangers(therapist)
    assert _login(browser, therapist) == 400


def test_a_cookie_for_another_account_counts_as_a_stranger(
    therapist: StaffPersona, therapist_es: StaffPersona
) -> None:
    browser = _browser(therapist_es)
    assert _login(browser, therapist, password=WRONG) == 400
    assert _account(therapist).failed_logins == 1
    assert _account(therapist_es).failed_logins == 0
    _lock_for_strangers(therapist)
    assert _login(browser, therapist) == 400


def test_a_cookie_from_before_a_password_change_counts_as_a_stranger(
    therapist: StaffPersona,
) -> None:
    browser = _browser(therapist)
    user = _account(therapist)
    user.set_password(STAFF_PASSWORD)  # the same words, but a new hash: a new password
    user.save()
    _lock_for_strangers(therapist)
    assert _login(browser, therapist) == 400


def test_an_expired_cookie_counts_as_a_stranger(therapist: StaffPersona) -> None:
    issued_long_ago = b62_encode(int(time.time()) - 181 * 24 * 3600)
    with mock.patch.object(signing.TimestampSigner, "timestamp", return_value=issued_long_ago):
        browser = _browser(therapist)
    _lock_for_strangers(therapist)
    assert _login(browser, therapist) == 400


def test_a_cookie_replaced_meanwhile_counts_its_failure_as_a_stranger(
    therapist: StaffPersona,
) -> None:
    _browser(therapist)
    known = StaffDeviceCookie.objects.get()
    StaffDeviceCookie.objects.all().delete()  # a login in another tab replaced it
    counted, _detail = services._attempt_reserve(therapist.user, known)
    assert counted is None and _account(therapist).failed_logins == 1


def test_deactivating_an_account_revokes_its_cookies(
    therapist: StaffPersona,
    coordinator: StaffPersona,
    staff_client: Callable[..., Client],
) -> None:
    browser = _browser(therapist)
    admin = staff_client(coordinator)
    url = f"/admin/accounts/staffuser/{therapist.user.pk}/change/"
    form = {
        "username": "anna",
        "display_name": "",
        "role": therapist.user.role,
        "site": therapist.user.site_id,
        "languages": '["de"]',
    }
    assert admin.post(url, form).status_code == 302  # is_active left out: deactivated
    assert admin.post(url, {**form, "is_active": "on"}).status_code == 302
    assert _account(therapist).is_active
    _lock_for_strangers(therapist)
    assert _login(browser, therapist) == 400
    assert AuditEvent.objects.filter(action="staff.device_cookies_revoked").count() == 1


def test_a_new_login_replaces_the_cookie(therapist: StaffPersona) -> None:
    browser = _browser(therapist)
    old = browser.cookies[COOKIE].value
    assert _login(browser, therapist) == 302
    assert browser.cookies[COOKIE].value != old
    _lock_for_strangers(therapist)
    stale = Client()
    stale.cookies[COOKIE] = old
    assert _login(stale, therapist) == 400
    assert _login(browser, therapist) == 302


def test_only_a_successful_login_sets_the_cookie(therapist: StaffPersona) -> None:
    form = {"username": "anna", "password": WRONG, "otp_token": _fresh_code(therapist)}
    failed = Client().post(LOGIN, form)
    assert failed.status_code == 400 and COOKIE not in failed.cookies
    form = {**form, "password": STAFF_PASSWORD, "otp_token": _fresh_code(therapist)}
    assert COOKIE in Client().post(LOGIN, form).cookies


def test_participants_never_get_a_device_cookie(therapist: StaffPersona) -> None:
    assert COOKIE in _browser(therapist).cookies  # staff do
    client = Client()
    signup = client.post("/en/start/", {"language": "en"})
    assert signup.status_code == 200 and COOKIE not in signup.cookies
    codename = signup.context["codename"]
    client.post("/en/logout/")
    login = Client().post("/en/login/", {"codename": codename})
    assert login.status_code == 302 and COOKIE not in login.cookies


def test_the_audit_log_never_holds_the_cookie(therapist: StaffPersona) -> None:
    browser = _browser(therapist)
    value = browser.cookies[COOKIE].value
    _login(browser, therapist, password=WRONG)
    _login(browser, therapist)
    events = AuditEvent.objects.filter(action__startswith="staff.login")
    assert events.count() == 3
    for event in events:
        text = f"{event.actor} {event.subject} {event.detail}"
        assert value not in text and value.split(":")[0] not in text


def test_the_refusal_is_localised(therapist: StaffPersona) -> None:
    form = {"username": "anna", "password": WRONG, "otp_token": _fresh_code(therapist)}
    page = Client().post("/de/staff/login/", form).content.decode()
    assert "Anmeldung fehlgeschlagen" in page
    assert "in diesem Browser" in page


# --- fuzz -----------------------------------------------------------------------------------

FUZZ = hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# What an HTTP header can carry (latin-1), of any length around a real cookie's.
cookie_text = st.text(alphabet=st.characters(codec="latin-1"), max_size=300)


def _genuine_cookie(persona: StaffPersona) -> str:
    # Examples share the database: undo the previous example's lock first.
    StaffUser.objects.filter(pk=persona.user.pk).update(failed_logins=0, locked_until=None)
    return _browser(persona).cookies[COOKIE].value


def _only_the_genuine_cookie_logs_in(persona: StaffPersona, genuine: str, value: str) -> None:
    # Locked for strangers: only a trusted cookie could log in now.
    StaffUser.objects.filter(pk=persona.user.pk).update(
        locked_until=timezone.now() + timedelta(hours=1)
    )
    for cookie, status in ((value, 400), (genuine, 302)):
        client = Client()
        client.cookies[COOKIE] = cookie
        assert _login(client, persona) == status


@FUZZ
@given(value=cookie_text)
def test_random_cookie_text_is_never_trusted(therapist: StaffPersona, value: str) -> None:
    genuine = _genuine_cookie(therapist)
    _only_the_genuine_cookie_logs_in(therapist, genuine, value)


@FUZZ
@given(position=st.integers(min_value=0), replacement=st.characters(codec="ascii"))
def test_a_changed_character_is_never_trusted(
    therapist: StaffPersona, position: int, replacement: str
) -> None:
    genuine = _genuine_cookie(therapist)
    index = position % len(genuine)
    changed = genuine[:index] + replacement + genuine[index + 1 :]
    if changed != genuine:
        _only_the_genuine_cookie_logs_in(therapist, genuine, changed)


def test_a_stranger_with_the_password_cannot_lock_the_therapists_browser_by_wrong_codes(
    therapist: StaffPersona,
) -> None:
    """Wrong codes with the right password (a leaked password) count against the stranger's
    account lock like any failure. django-otp's own throttle counted them on the TOTP device,
    shared by every browser, with a delay that doubles up to a hundred years: the owner's
    known browser was refused their right code too, and no admin page can reset it."""
    browser = _browser(therapist)
    wrong = f"{(int(therapist.current_code()) + 1) % 1_000_000:06d}"
    for _ in range(5):
        form = {"username": therapist.user.username, "password": STAFF_PASSWORD, "otp_token": wrong}
        assert Client().post(LOGIN, form).status_code == 400
    assert _login(browser, therapist) == 302
