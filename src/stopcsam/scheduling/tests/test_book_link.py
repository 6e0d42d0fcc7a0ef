"""once the whole course was attended, "Your sessions" still offers "Book your
sessions", which only bounces back with "Booking is not open for you"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

from django.urls import reverse

from stopcsam.scheduling import services
from stopcsam.scheduling.tests.conftest import FrozenClock, book_course

FIRST = datetime(2026, 3, 17, 16, 0, tzinfo=UTC)
WINDOWS = [(1, time(17), time(20)), (3, time(17), time(20))]


def test_no_book_link_once_the_whole_course_was_attended(
    frozen: FrozenClock, therapist, bookable: Callable, participant, participant_client
) -> None:  # type: ignore[no-untyped-def]
    bookable(therapist.user, WINDOWS, max_per_week=20, max_per_day=6)
    me = participant.participant
    course = book_course(me, FIRST)
    for appointment in course.appointments.order_by("start"):
        frozen.set(appointment.start + timedelta(minutes=1))
        services.appointment_mark_joined(appointment_ref=appointment.ref, role="participant")
        services.appointment_mark_attended(appointment_ref=appointment.ref)
    frozen.set(FIRST + timedelta(weeks=4))
    client = participant_client(participant)
    assert client.get(reverse("scheduling:book")).status_code == 302  # refused
    page = client.get(reverse("scheduling:mine")).content.decode()
    assert reverse("scheduling:book") not in page, "a link to a booking that is refused"


def test_a_refused_booking_says_so_once(
    frozen: FrozenClock, therapist, bookable: Callable, participant, participant_client
) -> None:  # type: ignore[no-untyped-def]
    """A usability finding: the redirect's notice and the page both said it, one above the
    other."""
    test_no_book_link_once_the_whole_course_was_attended(
        frozen, therapist, bookable, participant, participant_client
    )
    page = participant_client(participant).get(reverse("scheduling:book"), follow=True)
    said = "Booking is not open for you at this stage of the study."
    assert page.content.decode().count(said) == 1
