from __future__ import annotations

import io
import logging
import threading
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django_otp.oath import TOTP

from stopcsam.accounts import services
from stopcsam.accounts.exceptions import UsernameTakenError
from stopcsam.accounts.models import Role, Site, StaffInvitation, StaffUser
from stopcsam.accounts.services import invitation_totp_key, staff_invitation_create
from stopcsam.conftest import StaffPersona

pytestmark = pytest.mark.django_db
GOOD_PASSWORD = "a-long-and-unusual-passphrase"


def _invite(site: Site) -> str:
    _invitation, token = staff_invitation_create(
        role=Role.THERAPIST, site=site, languages=["de"], display_name="Neu"
    )
    return token


def _code(token: str) -> str:
    return f"{TOTP(bytes.fromhex(invitation_totp_key(token))).token():06d}"


def test_an_invitation_creates_an_account_with_totp(site_de: Site) -> None:
    token = _invite(site_de)
    page = Client().get(f"/en/staff/invite/{token}/")
    assert page.status_code == 200 and b"<svg" in page.content
    response = Client().post(
        f"/en/staff/invite/{token}/",
        {
            "username": "newbie",
            "password1": GOOD_PASSWORD,
            "password2": GOOD_PASSWORD,
            "otp_token": _code(token),
        },
    )
    assert response.status_code == 302
    user = StaffUser.objects.get(username="newbie")
    assert user.role == Role.THERAPIST and user.site == site_de and user.languages == ["de"]
    # The link works once.
    assert Client().get(f"/en/staff/invite/{token}/").status_code == 404


def test_the_enrolment_code_cannot_be_replayed_at_login(site_de: Site) -> None:
    token = _invite(site_de)
    code = _code(token)
    Client().post(
        f"/en/staff/invite/{token}/",
        {
            "username": "newbie",
            "password1": GOOD_PASSWORD,
            "password2": GOOD_PASSWORD,
            "otp_token": code,
        },
    )
    login = Client().post(
        "/en/staff/login/", {"username": "newbie", "password": GOOD_PASSWORD, "otp_token": code}
    )
    assert login.status_code == 400


@pytest.mark.parametrize(
    ("fields", "field_with_error"),
    [
        ({"password2": "something-else-entirely"}, "password2"),
        ({"password1": "short", "password2": "short"}, "password1"),
        ({"otp_token": "123456"}, "otp_token"),
        ({"username": "no spaces allowed"}, "username"),
    ],
)
def test_bad_enrolments_are_refused_clearly(
    site_de: Site, fields: dict[str, str], field_with_error: str
) -> None:
    token = _invite(site_de)
    data = {
        "username": "newbie",
        "password1": GOOD_PASSWORD,
        "password2": GOOD_PASSWORD,
        "otp_token": _code(token) if "otp_token" not in fields else "000000",
        **fields,
    }
    response = Client().post(f"/en/staff/invite/{token}/", data)
    assert response.status_code == 400
    assert field_with_error in response.context["form"].errors
    assert not StaffUser.objects.filter(username="newbie").exists()


def test_unknown_tokens_get_a_clear_page(db: None) -> None:
    assert Client().get("/en/staff/invite/not-a-token/").status_code == 404


def test_createstaff_creates_a_member_with_a_totp_key(
    site_de: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD_PASSWORD + "\n"))
    out = io.StringIO()
    call_command(
        "createstaff",
        "--username",
        "sup",
        "--role",
        "supervisor",
        "--site",
        "de",
        "--languages",
        "de,en",
        "--password-stdin",
        stdout=out,
    )
    assert "otpauth://totp/" in out.getvalue()
    user = StaffUser.objects.get(username="sup")
    assert user.check_password(GOOD_PASSWORD) and user.role == Role.SUPERVISOR


@pytest.mark.parametrize(
    "args",
    [
        ["--site", "XX", "--languages", "de"],
        ["--site", "DE", "--languages", "fr"],
    ],
)
def test_createstaff_refuses_bad_input(
    site_de: Site, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD_PASSWORD + "\n"))
    with pytest.raises(CommandError):
        call_command(
            "createstaff", "--username", "x1", "--role", "therapist", *args, "--password-stdin"
        )


def test_invitestaff_prints_a_working_link(site_de: Site) -> None:
    out = io.StringIO()
    call_command("invitestaff", "--role", "therapist", "--site", "DE", stdout=out)
    link = out.getvalue().strip()
    assert Client().get(link.removeprefix("http://127.0.0.1:8000")).status_code == 200


@pytest.mark.parametrize(
    "args", [["--languages", "fr"], ["--languages", "de,xx"], ["--display-name", "N" * 101]]
)
def test_invitestaff_refuses_what_the_acceptance_would_fail_on(
    site_de: Site, args: list[str]
) -> None:
    """A language no site speaks made the link's acceptance a 500 (the account's own check
    refused it only then, after the new member had set a password and scanned the code)."""
    with pytest.raises(CommandError):
        call_command("invitestaff", "--role", "therapist", "--site", "DE", *args)
    assert not StaffInvitation.objects.exists()


def test_the_access_log_never_holds_an_invitation_token(
    site_de: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """The token is a working credential for days: the log names the parameter instead."""
    _invitation, token = staff_invitation_create(role="therapist", site=site_de, languages=["en"])
    caplog.set_level(logging.INFO, logger="stopcsam.access")
    assert Client().get(f"/en/staff/invite/{token}/").status_code == 200
    logged = [r.getMessage() for r in caplog.records if r.name == "stopcsam.access"]
    assert logged and logged[0].startswith("GET /en/staff/invite/<token>/ 200")
    assert not any(token in line for line in logged)


def test_no_log_line_written_out_holds_an_invitation_token(site_de: Site) -> None:
    """Django's own line for a 4xx (a wrong one-time code) quotes the path: the console
    handler's filter rewrites it as the access log does."""
    import io

    _invitation, token = staff_invitation_create(role="therapist", site=site_de, languages=["en"])
    (console,) = [h for h in logging.getLogger().handlers if getattr(h, "filters", None)]
    written = io.StringIO()
    stream = console.setStream(written)  # type: ignore[attr-defined]
    try:
        form = {"username": "newtherapist", "password1": GOOD_PASSWORD, "otp_token": "000000"}
        assert Client().post(f"/en/staff/invite/{token}/", form).status_code == 400
    finally:
        console.setStream(stream)  # type: ignore[attr-defined]
    output = written.getvalue()
    assert "/en/staff/invite/<token>/" in output and token not in output


def test_the_password_cannot_be_the_username(site_de: Site) -> None:
    """The password validators ran without the account, so the one comparing the password
    with the username let "maria.lopez.madrid" be its own password (a review finding)."""
    token = _invite(site_de)
    response = Client().post(
        f"/en/staff/invite/{token}/",
        {
            "username": "maria.lopez.madrid",
            "password1": "maria.lopez.madrid",
            "password2": "maria.lopez.madrid",
            "otp_token": _code(token),
        },
    )
    assert response.status_code == 400
    assert "too similar to the username" in response.content.decode()
    assert not StaffUser.objects.exists()


def test_createstaff_refuses_the_username_as_password(
    site_de: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("maria.lopez.madrid\n"))
    with pytest.raises(CommandError, match="too similar to the username"):
        call_command(
            "createstaff",
            *("--username", "maria.lopez.madrid", "--role", "therapist"),
            *("--site", "DE", "--languages", "de", "--password-stdin"),
        )
    assert not StaffUser.objects.exists()


def test_createstaff_refuses_a_password_longer_than_the_login_takes(
    site_de: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The login form takes at most 256 characters: the account could never log in."""
    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD_PASSWORD * 10 + "\n"))
    with pytest.raises(CommandError, match="256"):
        call_command(
            "createstaff",
            *("--username", "newbie", "--role", "therapist"),
            *("--site", "DE", "--languages", "de", "--password-stdin"),
        )
    assert not StaffUser.objects.exists()


@pytest.mark.parametrize("change", [{"is_active": False}, {"role": Role.THERAPIST}])
def test_an_invitation_from_an_account_that_may_invite_no_longer_does_not_open(
    site_de: Site, coordinator: StaffPersona, change: dict[str, object]
) -> None:
    """Deactivated, or a therapist now, a coordinator kept a way back in: links they had
    made (for themselves, say) still made new accounts at their site."""
    _invitation, token = staff_invitation_create(
        role=Role.THERAPIST, site=site_de, languages=["de"], created_by=coordinator.user
    )
    assert Client().get(f"/en/staff/invite/{token}/").status_code == 200
    StaffUser.objects.filter(pk=coordinator.user.pk).update(**change)
    assert Client().get(f"/en/staff/invite/{token}/").status_code == 404
    response = Client().post(
        f"/en/staff/invite/{token}/",
        {
            "username": "newbie",
            "password1": GOOD_PASSWORD,
            "password2": GOOD_PASSWORD,
            "otp_token": _code(token),
        },
    )
    assert response.status_code == 404
    assert not StaffUser.objects.filter(username="newbie").exists()


def _accept_form(token: str, username: str) -> dict[str, str]:
    return {
        "username": username,
        "password1": GOOD_PASSWORD,
        "password2": GOOD_PASSWORD,
        "otp_token": _code(token),
    }


def test_the_database_refuses_a_username_in_another_letter_case(site_de: Site) -> None:
    StaffUser.objects.create(username="newbie", role=Role.THERAPIST, site=site_de)
    with pytest.raises(IntegrityError), transaction.atomic():
        StaffUser.objects.create(username="NEWBIE", role=Role.THERAPIST, site=site_de)


def test_a_username_taken_meanwhile_gets_the_form_error_not_a_500(
    site_de: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another acceptance commits the same name between the check and the insert, as two
    accepted at once on PostgreSQL did: the database refuses, the form says so."""
    token = _invite(site_de)

    def meanwhile(self: StaffUser, *args: object, **kwargs: object) -> None:
        StaffUser.objects.create(username="NEWBIE", role=Role.THERAPIST, site=site_de)

    monkeypatch.setattr(StaffUser, "full_clean", meanwhile)
    response = Client().post(f"/en/staff/invite/{token}/", _accept_form(token, "newbie"))
    assert response.status_code == 400
    assert response.context["form"].errors["username"] == ["This username is taken."]
    assert not StaffUser.objects.filter(username="newbie").exists()
    assert StaffInvitation.objects.get().used_at is None  # the link still works


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="runs when DATABASE_URL is set")
@pytest.mark.parametrize("second", ["newbie", "NEWBIE"])
def test_two_acceptances_at_once_create_one_account(
    site_de: Site, settings: object, second: str
) -> None:
    settings.SLOW_HASHES_AT_ONCE = 2  # type: ignore[attr-defined]
    tokens = [_invite(site_de), _invite(site_de)]
    original = StaffUser.full_clean
    # Both have checked that the name is free before either inserts it.
    meet = threading.Barrier(2, timeout=5)

    def checked_then_wait(self: StaffUser, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        meet.wait()

    outcomes: list[str] = []

    def accept(token: str, username: str) -> None:
        try:
            services.staff_invitation_accept(
                token=token, username=username, password=GOOD_PASSWORD, otp_token=_code(token)
            )
            outcomes.append("created")
        except UsernameTakenError:
            outcomes.append("taken")
        except Exception as exc:
            outcomes.append(repr(exc))
        finally:
            connection.close()

    with mock.patch.object(StaffUser, "full_clean", checked_then_wait):
        threads = [
            threading.Thread(target=accept, args=(token, name))
            for token, name in zip(tokens, ["newbie", second], strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(outcomes) == ["created", "taken"]
    assert StaffUser.objects.filter(username__iexact="newbie").count() == 1
