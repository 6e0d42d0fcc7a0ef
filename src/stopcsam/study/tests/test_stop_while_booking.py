"""(PostgreSQL only) course_book now
asks may_book under the participant's lock, but "stop" never takes that lock, so a stop not
yet committed is not waited for: the course is booked, the stop commits, and its
cancel-on-withdrawal ran before the course existed. A withdrawn participant keeps a course."""

from __future__ import annotations

import contextlib
import threading
import time as wall
from datetime import time

import pytest
from django.db import connection, transaction

from stopcsam.scheduling import selectors as scheduling
from stopcsam.scheduling import services as booking
from stopcsam.scheduling.exceptions import BookingNotAllowedError
from stopcsam.scheduling.models import Appointment, Status
from stopcsam.scheduling.tests.conftest import make_bookable
from stopcsam.study.models import ProtocolVersion
from stopcsam.study.services import withdraw
from stopcsam.study.tests.conftest import randomized_to

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="runs when DATABASE_URL is set"),
]


def test_a_course_confirmed_during_an_uncommitted_stop_is_not_kept(
    version: ProtocolVersion, therapist
) -> None:  # type: ignore[no-untyped-def]
    make_bookable(
        therapist.user, [(d, time(8), time(20)) for d in range(7)], max_per_week=20, max_per_day=6
    )
    enrolment = randomized_to(version, "chat")
    me = enrolment.participant
    first = scheduling.free_start_times(language=me.language)[0]
    proposal = scheduling.course_proposal(participant=me, first=first)
    assert proposal is not None
    stopping, release = threading.Event(), threading.Event()

    def stop() -> None:
        with transaction.atomic():
            withdraw(enrolment=enrolment, erase=False)
            stopping.set()
            release.wait(5)
        connection.close()

    def confirm() -> None:
        try:
            with contextlib.suppress(BookingNotAllowedError):  # the stop, seen: refused
                booking.course_book(
                    participant=me,
                    therapist_id=proposal.therapist.pk,
                    starts=[s.start for s in proposal.sessions],
                )
        finally:
            connection.close()

    a = threading.Thread(target=stop)
    a.start()
    assert stopping.wait(5)
    b = threading.Thread(target=confirm)
    b.start()
    wall.sleep(0.5)
    release.set()
    a.join(10)
    b.join(10)
    booked = Appointment.objects.filter(participant=me, status=Status.BOOKED).count()
    assert booked == 0, f"{booked} sessions booked for a participant who stopped"
