"""Demo sites and staff. Demo TOTP keys are derived from the username so `stopcsam totp`
can show the current code; this only ever happens with STOPCSAM_DEMO=1."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from stopcsam.accounts.models import Role, Site, StaffUser
from stopcsam.accounts.services import staff_create

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105  (printed for demo logins by design)

SITES = [
    ("DE", "Charité Berlin", "DE", "Europe/Berlin", ["de", "en"]),
    ("ES", "Spain partner site", "ES", "Europe/Madrid", ["es", "en"]),
    ("PT", "Portugal partner site", "PT", "Europe/Lisbon", ["pt", "en"]),
    ("CZ", "Czechia partner site", "CZ", "Europe/Prague", ["cs", "en"]),
]


@dataclass(frozen=True)
class DemoStaff:
    username: str
    display_name: str
    role: Role
    site: str
    languages: tuple[str, ...]


STAFF = [
    DemoStaff("therapist-de", "Anna (DE)", Role.THERAPIST, "DE", ("de", "en")),
    DemoStaff("therapist-es", "Lucía (ES)", Role.THERAPIST, "ES", ("es", "en")),
    DemoStaff("therapist-pt", "João (PT)", Role.THERAPIST, "PT", ("pt", "en")),
    DemoStaff("therapist-cz", "Petr (CZ)", Role.THERAPIST, "CZ", ("cs", "en")),
    DemoStaff("supervisor-de", "Sabine (DE)", Role.SUPERVISOR, "DE", ("de", "en")),
    DemoStaff("coordinator", "Clara (coordination)", Role.COORDINATOR, "DE", ("de", "en")),
    DemoStaff("studyadmin", "Sam (study admin)", Role.STUDY_ADMIN, "DE", ("en",)),
]


def demo_totp_key(username: str) -> str:
    material = f"{settings.SECRET_KEY}:demo-totp:{username}".encode()
    return hashlib.sha256(material).hexdigest()[:40]


@transaction.atomic
def seed_demo() -> list[DemoStaff]:
    sites = {}
    for code, name, country, tz, languages in SITES:
        sites[code], _ = Site.objects.get_or_create(
            code=code,
            defaults={"name": name, "country": country, "time_zone": tz, "languages": languages},
        )
    for member in STAFF:
        if StaffUser.objects.filter(username=member.username).exists():
            continue
        staff_create(
            username=member.username,
            password=DEMO_PASSWORD,
            role=member.role,
            site=sites[member.site],
            languages=list(member.languages),
            display_name=member.display_name,
            totp_key=demo_totp_key(member.username),
        )
    return STAFF
