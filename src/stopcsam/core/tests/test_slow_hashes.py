"""Sign-up, a participant's login and a staff login each cost an argon2 hash, which nobody can
throttle per client behind Tor. Unlimited, a flood of them took every core of the process
(noticed in session 18): each process now computes one at a time, and a request that waits
too long for its turn is told the service is busy (503), with nothing stored or counted."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client
from django_otp.oath import TOTP

from stopcsam.accounts.models import Participant, Role, Site, StaffUser
from stopcsam.accounts.services import (
    invitation_totp_key,
    staff_create,
    staff_invitation_accept,
    staff_invitation_create,
    staff_password_change,
)
from stopcsam.conftest import STAFF_PASSWORD
from stopcsam.core import hashing

pytestmark = pytest.mark.django_db
NEW = "a-new-and-unusual-passphrase"


@pytest.fixture
def turn_taken(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Another request holds the process's only turn for the whole test."""
    settings.SLOW_HASHES_AT_ONCE = 1
    settings.SLOW_HASH_WAIT_SECONDS = 0.2
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with hashing.slow_hash_turn():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(5)
    yield
    release.set()
    thread.join(5)


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("en", "Very busy right now"),
        ("de", "Gerade sehr viel los"),
        # Addressed as "tú", as everywhere else in Spanish (it said "usted" here alone).
        ("es", "Espera medio minuto, vuelve atrás e inténtalo de nuevo."),
    ],
)
def test_a_sign_up_without_a_turn_is_told_to_try_again_and_stores_nothing(
    turn_taken, language, said
):
    response = Client().post(f"/{language}/start/", {"language": language})
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert said in response.content.decode()
    assert not Participant.objects.exists()


def test_a_participant_login_without_a_turn_is_busy(participant, turn_taken):
    response = Client().post("/en/login/", {"codename": participant.codename})
    assert response.status_code == 503
    assert "Very busy right now" in response.content.decode()


@pytest.mark.parametrize("username", ["tom", "nobody-of-that-name"])
def test_a_staff_login_without_a_turn_is_busy_and_counts_no_failure(
    therapist, turn_taken, username
):
    name = therapist.user.username if username == "tom" else username
    response = Client().post(
        "/en/staff/login/",
        {"username": name, "password": STAFF_PASSWORD, "otp_token": therapist.current_code()},
    )
    assert response.status_code == 503
    assert StaffUser.objects.get(pk=therapist.user.pk).failed_logins == 0


def test_a_password_change_without_a_turn_is_busy_and_counts_no_failure(
    therapist, staff_client, turn_taken
):
    before = therapist.user.password
    response = staff_client(therapist).post(
        "/en/staff/password/",
        {"old_password": STAFF_PASSWORD, "new_password1": NEW, "new_password2": NEW},
    )
    assert response.status_code == 503
    user = StaffUser.objects.get(pk=therapist.user.pk)
    assert user.failed_logins == 0
    assert user.password == before


def _invitation(site: Site) -> tuple[str, str]:
    _invitation, token = staff_invitation_create(role=Role.THERAPIST, site=site, languages=["de"])
    return token, f"{TOTP(bytes.fromhex(invitation_totp_key(token))).token():06d}"


@pytest.mark.django_db(transaction=True)
def test_an_invitation_waiting_for_its_turn_holds_up_no_other_write(settings, site_de):
    """On SQLite a transaction holds the database's write lock: a hash that waited for its
    turn inside one held up every writer (live chats' messages too) for as long."""
    token, code = _invitation(site_de)
    settings.SLOW_HASHES_AT_ONCE = 1
    settings.SLOW_HASH_WAIT_SECONDS = 2.0
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with hashing.slow_hash_turn():
            holding.set()
            release.wait(10)

    def accept() -> None:
        try:
            staff_invitation_accept(token=token, username="newbie", password=NEW, otp_token=code)
        except hashing.HashingBusyError:
            pass
        finally:
            connection.close()

    holder, accepting = threading.Thread(target=hold), threading.Thread(target=accept)
    holder.start()
    assert holding.wait(5)
    accepting.start()
    try:
        time.sleep(0.3)  # the acceptance is waiting for its turn
        started = time.monotonic()
        Site.objects.create(code="CZ", name="Praha", country="CZ", time_zone="Europe/Prague")
        waited = time.monotonic() - started
    finally:
        accepting.join(10)
        release.set()
        holder.join(5)
    assert waited < 1.0
    assert not StaffUser.objects.filter(username="newbie").exists()


@pytest.fixture
def turn_depths(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """How many database transactions deep (beyond the test's own) each wait for a turn was."""
    depths: list[int] = []
    outside = len(connection.atomic_blocks)
    real = hashing._Turns.take

    def recording(turns: hashing._Turns) -> threading.BoundedSemaphore:
        depths.append(len(connection.atomic_blocks) - outside)
        return real(turns)

    monkeypatch.setattr(hashing._Turns, "take", recording)
    return depths


@pytest.mark.parametrize("way", ["created", "invited", "password changed"])
def test_no_slow_hash_waits_for_its_turn_inside_a_transaction(site_de, therapist, turn_depths, way):
    if way == "created":
        staff_create(
            username="newbie", password=NEW, role=Role.THERAPIST, site=site_de, languages=["de"]
        )
    elif way == "invited":
        token, code = _invitation(site_de)
        staff_invitation_accept(token=token, username="newbie", password=NEW, otp_token=code)
    else:
        staff_password_change(user=therapist.user, old_password=STAFF_PASSWORD, new_password=NEW)
    assert turn_depths and set(turn_depths) == {0}


def test_a_request_that_gets_its_turn_in_time_goes_through(settings, participant):
    settings.SLOW_HASHES_AT_ONCE = 1
    settings.SLOW_HASH_WAIT_SECONDS = 5
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with hashing.slow_hash_turn():
            holding.set()
            release.wait(0.3)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(5)
    response = Client().post("/en/login/", {"codename": participant.codename})
    thread.join(5)
    assert response.status_code == 302


def test_two_turns_at_once_when_configured(settings):
    settings.SLOW_HASHES_AT_ONCE = 2
    settings.SLOW_HASH_WAIT_SECONDS = 0.1
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with hashing.slow_hash_turn():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(5)
    try:
        # The second turn is free, and a thread's own turn is never waited for.
        with hashing.slow_hash_turn(), hashing.slow_hash_turn():
            pass
        settings.SLOW_HASHES_AT_ONCE = 1  # another process's setting: a semaphore of its own
        with hashing.slow_hash_turn():
            pass
    finally:
        release.set()
        thread.join(5)


def test_a_count_below_one_is_refused_at_start(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            "DJANGO_SETTINGS_MODULE": "stopcsam.settings",
            "SECRET_KEY": "slow-hashes-test-" + "k" * 40,
            "STOPCSAM_ENCRYPTION_KEYS": "t:" + "D" * 43 + "=",
            "STOPCSAM_LOOKUP_KEY": "slow-hashes-test",
            "STOPCSAM_VAR_DIR": str(tmp_path),
            "STOPCSAM_SLOW_HASHES_AT_ONCE": "0",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "STOPCSAM_SLOW_HASHES_AT_ONCE must be 1 or more" in result.stderr


def test_no_more_than_a_few_requests_wait_and_the_next_is_busy_at_once(settings, turn_taken):
    """Each waiting request holds one of the process's HTTP threads, which every page needs:
    a trickle of sign-ups faster than a turn would have held them all, each for the whole
    wait."""
    settings.SLOW_HASH_WAIT_SECONDS = 5
    waiting = [threading.Thread(target=_take_a_turn) for _ in range(hashing.MAX_WAITING)]
    for thread in waiting:
        thread.start()
    deadline = time.monotonic() + 5
    while hashing._process_turns().waiting < hashing.MAX_WAITING and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    response = Client().post("/en/start/", {"language": "en"})
    assert response.status_code == 503
    assert time.monotonic() - started < 1.0  # not after the 5 s wait
    for thread in waiting:
        thread.join(10)


def _take_a_turn() -> None:
    with contextlib.suppress(hashing.HashingBusyError), hashing.slow_hash_turn():
        pass
