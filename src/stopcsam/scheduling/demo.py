"""Demo availability for the demo therapists (see accounts/demo_data.py). Idempotent."""

from __future__ import annotations

from datetime import time

from django.db import transaction

from stopcsam.accounts.models import StaffUser
from stopcsam.scheduling.models import TherapistProfile, WeeklyAvailability

# Weekday (Monday = 0), from, until: evenings and a daytime block, as clinics offer them.
TEMPLATES: dict[str, list[tuple[int, time, time]]] = {
    "therapist-de": [(0, time(17), time(20)), (1, time(9), time(12)), (3, time(17), time(20))],
    "therapist-es": [(0, time(10), time(13)), (2, time(18), time(21)), (4, time(16), time(19))],
    "therapist-pt": [(1, time(18), time(21)), (3, time(10), time(13)), (5, time(10), time(12))],
    "therapist-cz": [(1, time(16), time(19)), (2, time(9), time(12)), (4, time(9), time(12))],
}


@transaction.atomic
def seed_scheduling_demo() -> list[str]:
    """Mark the demo therapists as trained and give them weekly hours in their site's zone."""
    seeded = []
    for username, windows in TEMPLATES.items():
        staff = StaffUser.objects.filter(username=username).select_related("site").first()
        if staff is None:
            continue
        TherapistProfile.objects.update_or_create(
            staff=staff, defaults={"qualified": True, "time_zone": staff.site.time_zone}
        )
        if not WeeklyAvailability.objects.filter(therapist=staff).exists():
            WeeklyAvailability.objects.bulk_create(
                WeeklyAvailability(therapist=staff, weekday=d, start_time=s, end_time=e)
                for d, s, e in windows
            )
        seeded.append(username)
    return seeded
