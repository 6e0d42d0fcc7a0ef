"""Persona fixtures, shared by every app's tests.

Participants: ``participant`` and ``other_participant`` (each with the codename they hold).
Staff: ``therapist`` (DE), ``therapist_es`` (another site), ``supervisor``, ``coordinator``.
``other_save``: another member of staff saves the same unique value at the same moment.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from django.db import connections
from django.db.models import Model
from django.test import Client
from django.utils import translation
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from stopcsam.accounts.models import Participant, Role, Site, StaffUser
from stopcsam.accounts.services import participant_create, staff_create
from stopcsam.accounts.sessions import SESSION_KEY

STAFF_PASSWORD = "correct-horse-battery-staple-42"  # noqa: S105  (test persona)


@pytest.fixture(scope="session", autouse=True)
def no_connection_left_at_the_end(django_db_setup: None) -> Iterator[None]:
    """Close what other threads left open before the test database is dropped. The async
    ORM calls of the socket tests (``acount()`` ...) run on asgiref's one shared thread,
    whose connection outlived them, and PostgreSQL refused to drop the database at the end
    of the run ("being accessed by other users"); threads that ended (``asyncio.to_thread``)
    leave theirs to the garbage collector."""
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)
    gc.collect()


@pytest.fixture(autouse=True)
def each_test_starts_in_the_default_language() -> Iterator[None]:
    """A test that renders outside a request (a template tag, a mail) reads the thread's
    active language, which the previous test may have left in Spanish (test_i18n then
    test_noshow failed in that order only)."""
    translation.activate("en")
    yield
    translation.deactivate()


@dataclass
class ParticipantPersona:
    participant: Participant
    codename: str


@dataclass
class StaffPersona:
    user: StaffUser
    device: TOTPDevice

    def current_code(self) -> str:
        return f"{TOTP(self.device.bin_key).token():06d}"


@pytest.fixture
def site_de(db: None) -> Site:
    return Site.objects.create(
        code="DE", name="Berlin", country="DE", time_zone="Europe/Berlin", languages=["de", "en"]
    )


@pytest.fixture
def site_es(db: None) -> Site:
    return Site.objects.create(
        code="ES", name="Madrid", country="ES", time_zone="Europe/Madrid", languages=["es", "en"]
    )


def _staff(username: str, role: Role, site: Site, languages: list[str]) -> StaffPersona:
    user, device = staff_create(
        username=username, password=STAFF_PASSWORD, role=role, site=site, languages=languages
    )
    return StaffPersona(user=user, device=device)


@pytest.fixture
def participant(db: None) -> ParticipantPersona:
    created, codename = participant_create(language="en")
    return ParticipantPersona(created, codename)


@pytest.fixture
def other_participant(db: None) -> ParticipantPersona:
    created, codename = participant_create(language="de")
    return ParticipantPersona(created, codename)


@pytest.fixture
def therapist(site_de: Site) -> StaffPersona:
    return _staff("anna", Role.THERAPIST, site_de, ["de", "en"])


@pytest.fixture
def therapist_es(site_es: Site) -> StaffPersona:
    return _staff("lucia", Role.THERAPIST, site_es, ["es", "en"])


@pytest.fixture
def supervisor(site_de: Site) -> StaffPersona:
    return _staff("sabine", Role.SUPERVISOR, site_de, ["de"])


@pytest.fixture
def coordinator(site_de: Site) -> StaffPersona:
    return _staff("clara", Role.COORDINATOR, site_de, ["de", "en"])


@pytest.fixture
def participant_client() -> Callable[[ParticipantPersona], Client]:
    def make(persona: ParticipantPersona) -> Client:
        client = Client()
        session = client.session
        session[SESSION_KEY] = persona.participant.pk
        session.save()
        return client

    return make


@pytest.fixture
def staff_client() -> Callable[[StaffPersona], Client]:
    """A client logged in with password and a verified TOTP device."""

    def make(persona: StaffPersona, *, verified: bool = True) -> Client:
        client = Client()
        client.force_login(persona.user)
        if verified:
            session = client.session
            session[DEVICE_ID_SESSION_KEY] = persona.device.persistent_id
            session.save()
        return client

    return make


class OtherSave:
    """Another member of staff's save, committed after this request's form checked its
    values and before it saved them: the checks miss the row that clashes until this request
    saves a row of its kind, which then meets it in the database."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.unseen: type[Model] | None = None
        for name in ("validate_unique", "validate_constraints"):
            self.hide_from(Model, name)
        save_base = Model.save_base

        def saving(model: Model, *args: Any, **kwargs: Any) -> Any:
            if self.unseen is not None and isinstance(model, self.unseen):
                self.unseen = None
            return save_base(model, *args, **kwargs)

        monkeypatch.setattr(Model, "save_base", saving)

    def commit(self, row: Model) -> None:
        """The other save, of ``row`` (saved already): from now on missed by the checks."""
        self.unseen = type(row)

    def hide_from(self, owner: Any, name: str, *, instead: Any = None) -> None:
        """Make one more check miss it: a model's clean(), or a service's own look (then
        ``instead`` gives what the check gives when it finds nothing)."""
        check = getattr(owner, name)

        def missing(*args: Any, **kwargs: Any) -> Any:
            if self.unseen is None:
                return check(*args, **kwargs)
            return None if instead is None else instead(*args, **kwargs)

        self.monkeypatch.setattr(owner, name, missing)


@pytest.fixture
def other_save(monkeypatch: pytest.MonkeyPatch) -> OtherSave:
    return OtherSave(monkeypatch)
