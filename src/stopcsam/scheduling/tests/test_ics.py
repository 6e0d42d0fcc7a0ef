"""Calendar files: they parse, round-trip to the same instants and say nothing sensitive."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.test import Client
from icalendar import Calendar

from stopcsam.accounts import services as accounts_services
from stopcsam.conftest import STAFF_PASSWORD
from stopcsam.core.models import AuditEvent
from stopcsam.scheduling import selectors, services
from stopcsam.scheduling.models import Course
from stopcsam.scheduling.tests.conftest import TUESDAY_EVENING, FrozenClock

FIRST = datetime(2026, 3, 17, 16, 0, tzinfo=UTC)
# Words that must never appear in a calendar file someone else might see.
SENSITIVE = [
    "stopcsam", "csam", "abuse", "child", "therap", "session", "chat", "prevent", "study",
    "anna", "berlin", "sexual", "minor", "paedo", "pedo", "help", "clinic", "trial",
    "missbrauch", "kinder", "abuso", "niño", "criança", "zneužív", "dítě",
]  # fmt: skip


@pytest.fixture
def course(frozen: FrozenClock, participant, therapist, bookable) -> Course:  # type: ignore[no-untyped-def]
    bookable(therapist.user, TUESDAY_EVENING)
    proposal = selectors.course_proposal(participant=participant.participant, first=FIRST)
    assert proposal is not None
    return services.course_book(
        participant=participant.participant,
        therapist_id=proposal.therapist.pk,
        starts=[s.start for s in proposal.sessions],
    )


@pytest.fixture
def client_for(course: Course, participant, participant_client):  # type: ignore[no-untyped-def]
    return participant_client(participant)


def _events(body: bytes) -> list:  # type: ignore[type-arg]
    return list(Calendar.from_ical(body).walk("VEVENT"))


@pytest.mark.parametrize("tz", ["Europe/Berlin", "Europe/Lisbon", "America/New_York"])
def test_the_course_file_round_trips_to_the_booked_instants(
    course: Course, client_for, tz: str
) -> None:  # type: ignore[no-untyped-def]
    response = client_for.get(f"/en/sessions/course/{course.ref}.ics?tz={tz}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar"
    body = response.content
    events = _events(body)
    booked = sorted((a.start, a.end) for a in course.appointments.all())
    parsed = sorted(
        (e.decoded("dtstart").astimezone(UTC), e.decoded("dtend").astimezone(UTC)) for e in events
    )
    assert parsed == booked
    assert {str(e["summary"]) for e in events} == {"Appointment"}
    assert {e["dtstart"].params["TZID"] for e in events} == {tz}
    zones = [str(z["tzid"]) for z in Calendar.from_ical(body).walk("VTIMEZONE")]
    assert zones == [tz]


def test_no_sensitive_word_appears(course: Course, client_for) -> None:  # type: ignore[no-untyped-def]
    first = course.appointments.order_by("start").first()
    assert first is not None
    for url in (f"/en/sessions/course/{course.ref}.ics", f"/de/sessions/s/{first.ref}.ics"):
        text = client_for.get(url).content.decode().lower()
        for word in SENSITIVE:
            assert word not in text, word
        assert not re.search(r"https?://", text)
        assert "description" not in text and "location" not in text


def test_a_session_file_holds_one_event(course: Course, client_for) -> None:  # type: ignore[no-untyped-def]
    first = course.appointments.order_by("start").first()
    assert first is not None
    events = _events(client_for.get(f"/en/sessions/s/{first.ref}.ics").content)
    assert len(events) == 1
    assert events[0].decoded("dtstart").astimezone(UTC) == first.start


def test_another_participants_file_is_not_found(
    course: Course, other_participant, participant_client
) -> None:  # type: ignore[no-untyped-def]
    other = participant_client(other_participant)
    assert other.get(f"/en/sessions/course/{course.ref}.ics").status_code == 404


def test_the_staff_feed_is_private_and_revocable(course: Course, therapist, staff_client) -> None:  # type: ignore[no-untyped-def]
    client = staff_client(therapist)
    page = client.post("/en/sessions/staff/feed/reset/")
    url = re.search(r'id="feed-url">([^<]+)<', page.content.decode())
    assert url is not None
    path = url.group(1).split("testserver", 1)[1]
    from django.test import Client

    anonymous = Client()
    feed = anonymous.get(path)
    assert feed.status_code == 200
    assert len(_events(feed.content)) == 4
    assert "anna" not in feed.content.decode().lower()
    client.post("/en/sessions/staff/feed/reset/")
    assert anonymous.get(path).status_code == 404  # the old link stops
    client.post("/en/sessions/staff/feed/revoke/")
    assert anonymous.get("/en/sessions/feed.ics?key=x").status_code == 404
    assert anonymous.get("/en/sessions/feed.ics").status_code == 404


def test_the_staff_feed_and_the_participants_file_share_no_event_id(  # type: ignore[no-untyped-def]
    course: Course, therapist, client_for, staff_client
) -> None:
    """A calendar provider holding both (the participant imported their file, the therapist
    subscribes to the feed) must not be able to match them: that would link the participant
    to a named therapist of this service. Each stays stable across downloads."""
    from django.test import Client

    page = staff_client(therapist).post("/en/sessions/staff/feed/reset/")
    url = re.search(r'id="feed-url">([^<]+)<', page.content.decode())
    assert url is not None
    path = url.group(1).split("testserver", 1)[1]
    staff_ids = {str(e["uid"]) for e in _events(Client().get(path).content)}
    participant_path = f"/en/sessions/course/{course.ref}.ics"
    participant_ids = {str(e["uid"]) for e in _events(client_for.get(participant_path).content)}
    assert len(staff_ids) == len(participant_ids) == 4
    assert not staff_ids & participant_ids
    again = {str(e["uid"]) for e in _events(client_for.get(participant_path).content)}
    assert again == participant_ids
    assert not any(course.ref in uid for uid in staff_ids | participant_ids)


def test_event_ids_survive_a_new_secret_key_but_not_a_new_lookup_key(course: Course) -> None:
    """A re-imported file updates its entries after SECRET_KEY is rotated (the ids depend on
    the lookup key, kept for the service's life), and the ids are secret-keyed at all."""
    from django.test import override_settings

    from stopcsam.scheduling.ics import _uid

    appointment = course.appointments.order_by("start").first()
    assert appointment is not None
    before = _uid(appointment, "participant")
    with override_settings(SECRET_KEY="another-secret-key-" + "x" * 40):
        assert _uid(appointment, "participant") == before
    with override_settings(STOPCSAM_LOOKUP_KEY="another-lookup-key"):
        assert _uid(appointment, "participant") != before


def test_a_cancelled_session_is_cancelled_in_the_course_file_not_left_out(
    course: Course, client_for
) -> None:  # type: ignore[no-untyped-def]
    """Left out, it stayed in the participant's calendar when they imported the file again:
    an import adds and updates events, and removes none."""
    from stopcsam.scheduling.services import Actor

    before = _events(client_for.get(f"/en/sessions/course/{course.ref}.ics").content)
    second = course.appointments.order_by("start")[1]
    services.appointment_cancel(appointment=second, actor=Actor.participant())
    after = _events(client_for.get(f"/en/sessions/course/{course.ref}.ics").content)
    assert {str(e["uid"]) for e in after} == {str(e["uid"]) for e in before}
    cancelled = [e for e in after if e.decoded("dtstart").astimezone(UTC) == second.start]
    assert [str(e["status"]) for e in cancelled] == ["CANCELLED"]


def test_each_change_of_a_session_raises_its_sequence_under_the_same_uid(
    course: Course, client_for
) -> None:  # type: ignore[no-untyped-def]
    """RFC 5545: a calendar app that imported the earlier file replaces an event only when
    the new one has the same UID and a higher SEQUENCE; without it, a moved or cancelled
    session could stay at its old time in the participant's calendar."""
    from datetime import timedelta

    from stopcsam.scheduling.services import Actor

    first = course.appointments.order_by("start").first()
    assert first is not None
    url = f"/en/sessions/s/{first.ref}.ics"

    def event():  # type: ignore[no-untyped-def]
        (only,) = _events(client_for.get(url).content)
        return only

    booked = event()
    assert booked.decoded("sequence") == 0
    services.appointment_reschedule(
        appointment=first, new_start=first.start + timedelta(hours=1), actor=Actor.participant()
    )
    moved = event()
    assert moved["uid"] == booked["uid"]
    assert moved.decoded("sequence") == 1
    first.refresh_from_db()
    services.appointment_cancel(appointment=first, actor=Actor.participant())
    cancelled = event()
    assert cancelled["uid"] == booked["uid"]
    assert cancelled.decoded("sequence") == 2
    assert str(cancelled["status"]) == "CANCELLED"


def _feed_path(client) -> str:  # type: ignore[no-untyped-def]
    page = client.post("/en/sessions/staff/feed/reset/")
    url = re.search(r'id="feed-url">([^<]+)<', page.content.decode())
    assert url is not None
    return url.group(1).split("testserver", 1)[1]


def test_a_password_change_ends_the_feed_link(course: Course, therapist, staff_client) -> None:  # type: ignore[no-untyped-def]
    """The link is a credential of the account's: one copied before the change (from a
    stolen session, say) no longer reads the calendar."""
    path = _feed_path(staff_client(therapist))
    anonymous = Client()
    assert anonymous.get(path).status_code == 200
    accounts_services.staff_password_change(
        user=therapist.user, old_password=STAFF_PASSWORD, new_password="a-new-long-passphrase-7"
    )
    assert anonymous.get(path).status_code == 404
    assert AuditEvent.objects.filter(
        action="scheduling.feed_revoked", detail__reason="password_changed"
    ).exists()


def test_a_deactivation_ends_the_feed_link_for_good(  # type: ignore[no-untyped-def]
    course: Course, therapist, staff_client
) -> None:
    path = _feed_path(staff_client(therapist))
    therapist.user.is_active = False
    therapist.user.save()
    therapist.user.is_active = True  # activated again: the old link stays dead
    therapist.user.save()
    assert Client().get(path).status_code == 404


def test_other_saves_leave_the_feed_link_alone(course: Course, therapist, staff_client) -> None:  # type: ignore[no-untyped-def]
    path = _feed_path(staff_client(therapist))
    therapist.user.display_name = "Dr. A"
    therapist.user.save()
    assert Client().get(path).status_code == 200
