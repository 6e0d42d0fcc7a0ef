"""The pages: a participant books, sees, moves and cancels; staff manage; errors are 400s."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.test import Client

from stopcsam.scheduling.models import (
    Appointment,
    AvailabilityException,
    Course,
    Status,
    TherapistProfile,
    WeeklyAvailability,
)
from stopcsam.scheduling.tests.conftest import TUESDAY_EVENING, FrozenClock

FIRST = datetime(2026, 3, 17, 16, 0, tzinfo=UTC)


@pytest.fixture
def ready(frozen: FrozenClock, therapist, bookable) -> None:  # type: ignore[no-untyped-def]
    bookable(therapist.user, TUESDAY_EVENING)


@pytest.fixture
def client(ready: None, participant, participant_client) -> Client:  # type: ignore[no-untyped-def]
    return participant_client(participant)


def _book_through_pages(client: Client, tz: str = "Europe/Berlin") -> Course:
    page = client.get(f"/en/sessions/book/?tz={tz}&week=2")  # one week per page
    assert page.status_code == 200
    assert f'value="{int(FIRST.timestamp())}"' in page.content.decode()
    assert "Earlier times" in page.content.decode()
    proposal = client.get(f"/en/sessions/book/propose/?start={int(FIRST.timestamp())}")
    assert proposal.status_code == 200
    html = proposal.content.decode()
    therapist = re.search(r'name="therapist" value="(\d+)"', html)
    starts = re.search(r'name="starts" value="([\d,]+)"', html)
    assert therapist and starts
    done = client.post(
        "/en/sessions/book/confirm/", {"therapist": therapist[1], "starts": starts[1]}
    )
    assert done.status_code == 302 and done["Location"] == "/en/sessions/"
    return Course.objects.get()


def test_a_participant_books_a_course_without_javascript(client: Client) -> None:
    course = _book_through_pages(client)
    assert course.appointments.count() == 4
    page = client.get("/en/sessions/").content.decode()
    assert "Your sessions are booked." in page
    assert page.count("Change time") == 4
    assert "Tuesday, March 17, 2026, 17:00" in page  # shown in the chosen zone


def test_times_are_shown_in_the_participants_zone(client: Client) -> None:
    _book_through_pages(client)
    page = client.get("/en/sessions/?tz=America/New_York").content.decode()
    assert "Tuesday, March 17, 2026, 12:00" in page
    assert "Tuesday, March 31, 2026, 11:00" in page  # Europe changed later than New York
    # The choice sticks for the session without a cookie of its own.
    assert "Tuesday, March 17, 2026, 12:00" in client.get("/en/sessions/").content.decode()


def test_a_bad_time_zone_or_slot_gets_a_clear_400(client: Client) -> None:
    assert client.get("/en/sessions/book/?tz=Mars/Olympus").status_code == 200  # ignored
    bad = client.get("/en/sessions/book/propose/?start=yesterday")
    assert bad.status_code == 400
    assert "That time is not valid" in bad.content.decode()
    bad = client.post("/en/sessions/book/confirm/", {"therapist": "x", "starts": "1,a"})
    assert bad.status_code == 400


def test_a_slot_taken_meanwhile_sends_the_participant_back_with_a_message(
    client: Client, other_participant, participant_client
) -> None:  # type: ignore[no-untyped-def]
    other = participant_client(other_participant)
    page = client.get(f"/en/sessions/book/propose/?start={int(FIRST.timestamp())}").content
    html = page.decode()
    therapist = re.search(r'name="therapist" value="(\d+)"', html)
    starts = re.search(r'name="starts" value="([\d,]+)"', html)
    assert therapist and starts
    _book_through_pages(other)
    late = client.post(
        "/en/sessions/book/confirm/", {"therapist": therapist[1], "starts": starts[1]}
    )
    assert late["Location"] == "/en/sessions/book/"
    assert "no longer free" in client.get("/en/sessions/book/", follow=True).content.decode()
    assert Appointment.objects.count() == 4


def test_rescheduling_and_cancelling_through_the_pages(client: Client) -> None:
    course = _book_through_pages(client)
    first = course.appointments.order_by("start").first()
    assert first is not None
    page = client.get(f"/en/sessions/s/{first.ref}/reschedule/")
    assert page.status_code == 200
    new_start = datetime(2026, 3, 10, 17, tzinfo=UTC)
    moved = client.post(
        f"/en/sessions/s/{first.ref}/reschedule/",
        {"start": int(new_start.timestamp()), "scope": "one"},
    )
    assert moved.status_code == 302
    first.refresh_from_db()
    assert first.start == new_start
    refused = client.post(
        f"/en/sessions/s/{first.ref}/reschedule/", {"start": "12", "scope": "one"}
    )
    assert refused.status_code == 400
    assert "no longer free" in refused.content.decode()
    cancelled = client.post(f"/en/sessions/s/{first.ref}/cancel/", {"scope": "rest"})
    assert cancelled.status_code == 302
    assert set(course.appointments.values_list("status", flat=True)) == {Status.CANCELLED}
    assert client.post(f"/en/sessions/s/{first.ref}/cancel/", {"scope": "?"}).status_code == 400


def test_a_session_too_close_to_change_says_so_before_a_time_is_picked(
    client: Client, frozen: FrozenClock
) -> None:
    """Within the cut-off the pages listed times and a Cancel button, and said "too close"
    only after the participant had picked one and sent it."""
    from datetime import timedelta

    course = _book_through_pages(client)
    first = course.appointments.order_by("start").first()
    assert first is not None
    frozen.set(FIRST - timedelta(hours=6))
    for action in ("reschedule", "cancel"):
        html = client.get(f"/en/sessions/s/{first.ref}/{action}/").content.decode()
        assert "It is too close to the session to change it here." in html, action
        assert 'type="submit" class="danger"' not in html and 'name="start"' not in html


def test_a_missed_session_is_rebooked_through_the_page(client: Client, frozen: FrozenClock) -> None:
    from datetime import timedelta

    from stopcsam.scheduling import services

    course = _book_through_pages(client)
    frozen.set(FIRST + timedelta(minutes=20))
    services.no_shows_mark()
    page = client.get("/en/sessions/").content.decode()
    assert "You missed a session. You can book a new time for it." in page
    missed = course.appointments.get(status=Status.NO_SHOW)
    form = client.get(f"/en/sessions/s/{missed.ref}/reschedule/").content.decode()
    assert 'name="scope"' not in form
    later = datetime(2026, 4, 14, 15, tzinfo=UTC)  # Tuesday 14 April, 17:00 Berlin
    done = client.post(
        f"/en/sessions/s/{missed.ref}/reschedule/", {"start": int(later.timestamp())}
    )
    assert done.status_code == 302
    assert course.appointments.filter(status=Status.BOOKED).count() == 4


def test_a_missed_session_of_an_earlier_course_is_refused_clearly(
    client: Client, frozen: FrozenClock, participant
) -> None:  # type: ignore[no-untyped-def]
    """The reminder of a session missed in a course that ended still links to "Book a new
    time"; with a newer course open, that was refused as "That time is no longer free" (the
    rule of one open course), whatever time was picked."""
    from datetime import timedelta

    from stopcsam.scheduling import services
    from stopcsam.scheduling.services import Actor
    from stopcsam.scheduling.tests.conftest import book_course

    course = _book_through_pages(client)
    frozen.set(FIRST + timedelta(minutes=20))
    services.no_shows_mark()
    missed = course.appointments.get(status=Status.NO_SHOW)
    second = course.appointments.filter(status=Status.BOOKED).first()
    assert second is not None
    services.appointment_cancel(appointment=second, actor=Actor.participant(), rest=True)
    newer = book_course(participant.participant, datetime(2026, 3, 24, 16, tzinfo=UTC))
    refusal = "This session belongs to an earlier course"
    page = client.get(f"/en/sessions/s/{missed.ref}/reschedule/").content.decode()
    assert refusal in page and 'name="start"' not in page
    german = client.get(f"/de/sessions/s/{missed.ref}/reschedule/").content.decode()
    assert "Dieser Termin gehört zu einem früheren Kurs" in german
    free = datetime(2026, 3, 24, 18, tzinfo=UTC)  # Tuesday 24 March, 19:00 Berlin: free
    sent = client.post(f"/en/sessions/s/{missed.ref}/reschedule/", {"start": int(free.timestamp())})
    assert sent.status_code == 400 and refusal in sent.content.decode()
    assert "no longer free" not in sent.content.decode()
    course.refresh_from_db()
    assert course.ended_at is not None and not course.appointments.filter(status=Status.BOOKED)
    assert newer.appointments.filter(status=Status.BOOKED).count() == 4


def test_another_participants_session_is_not_found(
    client: Client, other_participant, participant_client
) -> None:  # type: ignore[no-untyped-def]
    course = _book_through_pages(client)
    first = course.appointments.first()
    assert first is not None
    other = participant_client(other_participant)
    assert other.get(f"/en/sessions/s/{first.ref}/reschedule/").status_code == 404
    assert other.post(f"/en/sessions/s/{first.ref}/cancel/", {"scope": "one"}).status_code == 404


def test_the_offer_is_paged_by_week(client: Client) -> None:
    first = client.get("/en/sessions/book/").content.decode()
    assert first.count('name="start"') == 3  # Tuesday 3 March: 17:00, 18:00, 19:00
    assert "Later times" in first and "Earlier times" not in first
    last = client.get("/en/sessions/book/?week=999").content.decode()
    assert "Earlier times" in last and "Later times" not in last


def test_pages_need_a_participant(ready: None) -> None:
    assert Client().get("/en/sessions/book/")["Location"].startswith("/en/login/")


@pytest.mark.parametrize("lang", ["en", "de", "cs", "pt", "es"])
def test_pages_speak_five_languages(client: Client, lang: str) -> None:
    page = client.get(f"/{lang}/sessions/book/")
    assert page.status_code == 200
    assert f'<html lang="{lang}">' in page.content.decode()


# --- staff ----------------------------------------------------------------------------------


def test_the_therapist_edits_weekly_hours_exceptions_and_limits(
    ready: None, therapist, staff_client
) -> None:  # type: ignore[no-untyped-def]
    client = staff_client(therapist)
    assert client.get("/en/sessions/staff/availability/").status_code == 200
    client.post(
        "/en/sessions/staff/availability/window/",
        {"weekday": "3", "start_time": "09:00", "end_time": "11:00"},
    )
    assert WeeklyAvailability.objects.filter(therapist=therapist.user, weekday=3).exists()
    bad = client.post(
        "/en/sessions/staff/availability/window/",
        {"weekday": "3", "start_time": "11:00", "end_time": "09:00"},
    )
    assert bad.status_code == 400 and "The end must be after the start." in bad.content.decode()
    client.post(
        "/en/sessions/staff/availability/exception/",
        {"kind": "sick", "date": "2026-03-24", "start_time": "00:00", "end_time": "23:59"},
    )
    sick = AvailabilityException.objects.get()
    assert sick.start == datetime(2026, 3, 23, 23, tzinfo=UTC)  # midnight Berlin, UTC+1
    client.post(
        "/en/sessions/staff/availability/limits/",
        {
            "time_zone": "Europe/Lisbon",
            "max_per_day": "3",
            "max_per_week": "9",
            "max_caseload": "6",
            "buffer_minutes": "15",
        },
    )
    profile = TherapistProfile.objects.get(staff=therapist.user)
    assert (profile.time_zone, profile.max_per_day, profile.buffer_minutes) == (
        "Europe/Lisbon",
        3,
        15,
    )
    bad = client.post("/en/sessions/staff/availability/limits/", {"time_zone": "Nowhere"})
    assert bad.status_code == 400


def test_the_therapist_sees_the_week_with_sessions_and_hours(
    client: Client, therapist, staff_client
) -> None:  # type: ignore[no-untyped-def]
    _book_through_pages(client)
    staff = staff_client(therapist)
    page = staff.get("/en/sessions/staff/?week=2026-03-17").content.decode()
    assert "Available 17:00\u201320:00" in page  # an en dash between the times
    assert "17:00\u201317:50" in page
    ref = Appointment.objects.order_by("start").first().ref  # type: ignore[union-attr]
    detail = staff.get(f"/en/sessions/staff/a/{ref}/")
    assert detail.status_code == 200 and "History" in detail.content.decode()
    assert staff.get("/en/sessions/staff/?week=garbage").status_code == 200
    assert staff.get("/en/sessions/staff/?week=9999-12-31").status_code == 200


def test_staff_pages_check_role_and_site(
    client: Client, therapist, therapist_es, supervisor, coordinator, staff_client
) -> None:  # type: ignore[no-untyped-def]
    _book_through_pages(client)
    ref = Appointment.objects.first().ref  # type: ignore[union-attr]
    assert staff_client(therapist_es).get(f"/en/sessions/staff/a/{ref}/").status_code == 404
    assert staff_client(supervisor).get(f"/en/sessions/staff/a/{ref}/").status_code == 200
    # Supervisors see the site's caseloads (DESIGN §2) but do not mark training.
    as_supervisor = staff_client(supervisor)
    page = as_supervisor.get("/en/sessions/staff/utilisation/")
    assert page.status_code == 200 and "anna" in page.content.decode()
    assert "/qualified/" not in page.content.decode()
    marked = as_supervisor.post(f"/en/sessions/staff/utilisation/{therapist.user.pk}/qualified/")
    assert marked.status_code == 403
    assert staff_client(therapist).get("/en/sessions/staff/utilisation/").status_code == 403
    unverified = staff_client(therapist, verified=False)
    assert unverified.get("/en/sessions/staff/").status_code == 302
    assert client.get("/en/sessions/staff/").status_code == 302  # a participant is not staff


def test_the_coordinator_sees_utilisation_and_marks_training(
    client: Client, therapist, coordinator, staff_client
) -> None:  # type: ignore[no-untyped-def]
    _book_through_pages(client)
    staff = staff_client(coordinator)
    page = staff.get("/en/sessions/staff/utilisation/").content.decode()
    assert "anna" in page
    # Four weeks ahead of 2 March hold the sessions of 17 and 24 March.
    assert re.search(r"<td>\d+</td><td>2</td><td>\d+%</td><td>1 / 10</td>", page)
    staff.post(f"/en/sessions/staff/utilisation/{therapist.user.pk}/qualified/", {})
    assert TherapistProfile.objects.get(staff=therapist.user).qualified is False
    staff.post(
        f"/en/sessions/staff/utilisation/{therapist.user.pk}/qualified/", {"qualified": "on"}
    )
    assert TherapistProfile.objects.get(staff=therapist.user).qualified is True


def test_the_therapist_hands_over_through_the_page(
    client: Client, therapist, staff_client, bookable
) -> None:  # type: ignore[no-untyped-def]
    from stopcsam.accounts.models import Role
    from stopcsam.accounts.services import staff_create

    course = _book_through_pages(client)
    ref = course.appointments.first().ref  # type: ignore[union-attr]
    staff = staff_client(therapist)
    alone = staff.get(f"/en/sessions/staff/a/{ref}/").content.decode()
    assert "No colleague can take this course over" in alone  # not an empty list to submit
    assert f"/staff/a/{ref}/handover/" not in alone
    colleague, _ = staff_create(
        username="ben", password="x" * 20, role=Role.THERAPIST, site=therapist.user.site,
        languages=["en", "de"],
    )  # fmt: skip
    bookable(colleague, [])
    assert f"/staff/a/{ref}/handover/" in staff.get(f"/en/sessions/staff/a/{ref}/").content.decode()
    done = staff.post(f"/en/sessions/staff/a/{ref}/handover/", {"colleague": colleague.pk})
    assert done.status_code == 302
    course.refresh_from_db()
    assert course.therapist_id == colleague.pk
    assert (
        staff.post(f"/en/sessions/staff/a/{ref}/handover/", {"colleague": "x"}).status_code == 404
    )


def test_the_zone_list_offers_each_zone_under_its_own_name_only() -> None:
    """tzdata's old country areas (US/Eastern ...) only point to zones already listed."""
    from stopcsam.scheduling.forms import is_zone, zone_choices

    listed = [zone for _group, options in zone_choices() for zone, _label in options]
    assert "America/New_York" in listed and "Europe/Berlin" in listed
    assert not [zone for zone in listed if zone.startswith(("US/", "Canada/", "Brazil/"))]
    assert not is_zone("US/Eastern") and is_zone("America/New_York")


def _ids_and_label_targets(html: str) -> tuple[list[str], list[str]]:
    return re.findall(r'\sid="([^"]+)"', html), re.findall(r'<label for="([^"]+)"', html)


@pytest.mark.parametrize("page", ["availability", "appointment"])
def test_staff_forms_sharing_a_page_keep_their_labels_apart(
    client: Client, therapist, staff_client, page: str
) -> None:  # type: ignore[no-untyped-def]
    """The weekly-hours and exception forms (both with "From" and "Until"), and the move and
    cancel forms (both with a scope), share a page: each label must name its own field, or a
    click on "This session and all later ones" under Cancel ticks the box under Move."""
    _book_through_pages(client)
    ref = Appointment.objects.order_by("start").first().ref  # type: ignore[union-attr]
    url = {
        "availability": "/en/sessions/staff/availability/",
        "appointment": f"/en/sessions/staff/a/{ref}/",
    }[page]
    html = staff_client(therapist).get(url).content.decode()
    ids, targets = _ids_and_label_targets(html)
    assert sorted(i for i in set(ids) if ids.count(i) > 1) == []
    assert all(ids.count(target) == 1 for target in targets)


def test_a_rejected_exception_is_shown_again_with_its_own_labels(
    ready: None, therapist, staff_client
) -> None:  # type: ignore[no-untyped-def]
    bad = staff_client(therapist).post(
        "/en/sessions/staff/availability/exception/",
        {"kind": "sick", "date": "2026-03-24", "start_time": "12:00", "end_time": "09:00"},
    )
    html = bad.content.decode()
    assert bad.status_code == 400 and "The end must be after the start." in html
    ids, _ = _ids_and_label_targets(html)
    assert sorted(i for i in set(ids) if ids.count(i) > 1) == []


@pytest.mark.parametrize("times", [("02:30", "04:00"), ("01:00", "02:15"), ("02:30", "03:15")])
def test_an_exception_at_a_time_skipped_when_clocks_go_forward_is_refused(
    ready: None, therapist, staff_client, times: tuple[str, str]
) -> None:  # type: ignore[no-untyped-def]
    """Berlin has no 02:00-02:59 on Sunday 29 March 2026. Such a time was saved an hour late,
    and "02:30 until 03:15" ended before it began: a 500."""
    client = staff_client(therapist)
    client.raise_request_exception = False
    start, end = times
    bad = client.post(
        "/en/sessions/staff/availability/exception/",
        {"kind": "sick", "date": "2026-03-29", "start_time": start, "end_time": end},
    )
    assert bad.status_code == 400
    assert "does not exist on that day" in bad.content.decode()
    assert not AvailabilityException.objects.exists()


def test_an_exception_in_the_hour_repeated_when_clocks_go_back_starts_at_its_first(
    ready: None, therapist, staff_client
) -> None:  # type: ignore[no-untyped-def]
    staff_client(therapist).post(
        "/en/sessions/staff/availability/exception/",
        {"kind": "blocked", "date": "2026-10-25", "start_time": "02:30", "end_time": "04:00"},
    )
    blocked = AvailabilityException.objects.get()
    assert blocked.start == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 summer time
    assert blocked.end == datetime(2026, 10, 25, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lang", "history", "change"),
    [
        ("de", "Verlauf", "Änderung"),
        ("cs", "Historie", "Změna"),
        ("pt", "Histórico", "Alteração"),
        ("es", "Historial", "Cambio"),
    ],
)
def test_the_history_of_a_session_is_headed_in_the_staff_language(
    client: Client, therapist, staff_client, lang: str, history: str, change: str
) -> None:  # type: ignore[no-untyped-def]
    """The admin's catalogue also has "History" and "Change" (a verb, on its buttons) and is
    looked up first: without a context of their own the table read "Geschichte" and "Ändern"."""
    _book_through_pages(client)
    ref = Appointment.objects.order_by("start").first().ref  # type: ignore[union-attr]
    html = staff_client(therapist).get(f"/{lang}/sessions/staff/a/{ref}/").content.decode()
    assert f"<h2>{history}</h2>" in html
    assert f"<th>{change}</th>" in html


def test_the_time_zone_list_carries_no_blank_lines() -> None:
    """About 500 options: Django's select put a line break and an indent around each, 2 KB of
    a page that must stay under 60 KB (tests/e2e/audit.py), which "Your sessions" passed."""
    from stopcsam.scheduling.forms import ZoneForm

    rendered = str(ZoneForm(initial={"tz": "Europe/Prague"})["tz"])
    assert rendered.count("<option") > 400 and "\n" not in rendered
    assert '<option value="Europe/Prague" selected>' in rendered
