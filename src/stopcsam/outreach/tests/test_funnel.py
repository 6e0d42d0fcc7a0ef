"""Funnel counters: daily aggregates per campaign and language, counted from the signal,
never per person; the staff page with conversion rates and small-cell suppression."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test import Client, RequestFactory

from stopcsam.conftest import StaffPersona
from stopcsam.core.clock import now
from stopcsam.core.signals import FUNNEL_STEPS, funnel_step
from stopcsam.outreach import selectors, services
from stopcsam.outreach.models import Campaign, FunnelCount
from stopcsam.outreach.receivers import SESSION_CAMPAIGN

pytestmark = pytest.mark.django_db


def _count(step: str, campaign: str = "", language: str = "en") -> int:
    return selectors.funnel_count(step=step, campaign=campaign, language=language, day=now().date())


def test_a_signal_from_another_app_is_counted_for_the_sessions_campaign() -> None:
    request = RequestFactory().get("/de/study/screening/")
    request.session = {SESSION_CAMPAIGN: "search-co"}  # type: ignore[assignment]
    request.LANGUAGE_CODE = "de"
    funnel_step.send(sender=None, step="screening_started", request=request)
    funnel_step.send(sender=None, step="screening_started", request=request)
    assert _count("screening_started", "search-co", "de") == 2
    assert FunnelCount.objects.count() == 1  # one daily row, no per-person rows


def test_an_unknown_step_is_not_counted_and_does_not_break_the_sender() -> None:
    funnel_step.send(sender=None, step="made_up", request=RequestFactory().get("/"))
    assert not FunnelCount.objects.exists()


def test_the_landing_page_keeps_a_known_campaign_in_the_session_only() -> None:
    Campaign.objects.create(code="forum-co")
    client = Client()
    client.get("/es/?c=forum-co")
    assert _count("landing_visit", "forum-co", "es") == 1
    assert client.session[SESSION_CAMPAIGN] == "forum-co"
    assert set(client.cookies) <= {"sid", "lang"}  # no new cookie


def test_an_unknown_campaign_counts_as_none_and_is_not_kept() -> None:
    client = Client()
    client.get("/en/?c=not-a-campaign")
    assert _count("landing_visit") == 1
    assert "sid" not in client.cookies


def test_clicks_between_our_own_pages_are_not_new_landing_visits() -> None:
    client = Client()
    client.get("/en/")
    client.get("/en/", headers={"sec-fetch-site": "same-origin"})
    client.get("/en/", headers={"sec-fetch-site": "cross-site"})
    assert _count("landing_visit") == 2
    # The framed widget is on our origin, so its help hop marks the redirect.
    assert client.get("/en/go/")["Location"] == "/en/?via=help"
    client.get("/en/?via=help", headers={"sec-fetch-site": "same-origin"})
    assert _count("landing_visit") == 3


def test_the_help_link_counts_a_click_and_leads_to_the_landing_page() -> None:
    Campaign.objects.create(code="search-co")
    response = Client().get("/cs/go/?c=search-co")
    assert response.status_code == 302 and response["Location"] == "/cs/?c=search-co"
    assert _count("help_click", "search-co", "cs") == 1


def test_concurrent_increments_are_all_counted(transactional_db: None) -> None:
    if connection.vendor == "sqlite" and "memory" in str(connection.settings_dict["NAME"]):
        pytest.skip("threads cannot share an in-memory SQLite database")
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(10):
                services.funnel_increment(step="help_click", campaign="race", language="en")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _count("help_click", "race") == 40


# --- the staff page -------------------------------------------------------------------------


def _seed(counts: dict[str, int], campaign: str = "search-co", day: date | None = None) -> None:
    for step, count in counts.items():
        FunnelCount.objects.create(
            day=day or now().date(), campaign=campaign, language="de", step=step, count=count
        )


def _last_month() -> date:
    """A day of the last calendar month that has ended: what suppressed figures show."""
    return now().date().replace(day=1) - timedelta(days=1)


def test_the_funnel_page_is_for_verified_staff_only(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    assert Client().get("/en/staff/outreach/funnel/").status_code == 302
    unverified = staff_client(coordinator, verified=False)
    assert unverified.get("/en/staff/outreach/funnel/").status_code == 302


def test_coordinators_see_exact_counts_and_conversion_rates(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    _seed({"warning_shown": 200, "help_click": 20, "landing_visit": 10, "screening_started": 3})
    html = staff_client(coordinator).get("/en/staff/outreach/funnel/").content.decode()
    assert ">200<" in html and ">20<" in html and "10.0 %" in html and "50.0 %" in html
    assert ">3<" in html  # exact, at their own site


def test_a_step_reached_by_more_than_the_step_before_shows_no_share(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    """Landing visits include people who came without a help click: 14 of 5 read 280 %
    (a review finding). Such a step shows no share; the next ones still do."""
    _seed({"warning_shown": 100, "help_click": 5, "landing_visit": 14, "screening_started": 7})
    html = staff_client(coordinator).get("/en/staff/outreach/funnel/").content.decode()
    landing = html.split('id="step-landing_visit"', 1)[1].split("</tr>", 1)[0]
    assert "280" not in landing and "<td>\u2013</td>" in landing
    assert "50.0 %" in html  # screening started: 7 of the 14 landing visits


def test_shared_figures_suppress_cells_under_five(
    coordinator: StaffPersona, therapist: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    _seed(
        {"warning_shown": 200, "help_click": 20, "landing_visit": 10, "screening_started": 3},
        day=_last_month(),
    )
    for client, url in [
        (staff_client(coordinator), "/en/staff/outreach/funnel/?shared=on"),
        (staff_client(therapist), "/en/staff/outreach/funnel/"),
    ]:
        html = client.get(url).content.decode()
        assert ">200<" in html and ">20<" in html  # last month's figures, as may be shared
        assert ">hidden<" in html and ">3<" not in html and "30.0 %" not in html


def test_the_report_filters_by_campaign_language_and_dates(coordinator: StaffPersona) -> None:
    _seed({"help_click": 7})
    _seed({"help_click": 9}, campaign="forum-co")
    today = now().date()
    report = selectors.funnel_report(
        user=coordinator.user, start=today, end=today, campaign="forum-co", language="de"
    )
    assert [r.count for r in report if r.step == "help_click"] == [9]
    earlier = selectors.funnel_report(
        user=coordinator.user, start=today - timedelta(days=9), end=today - timedelta(days=1)
    )
    assert all(r.count == 0 for r in earlier)
    assert [r.step for r in report] == list(FUNNEL_STEPS)


def test_a_reversed_date_range_is_a_clear_400(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    response = staff_client(coordinator).get(
        "/en/staff/outreach/funnel/?start=2026-05-02&end=2026-05-01"
    )
    assert response.status_code == 400
    assert "must not be after" in response.content.decode()


def test_suppressed_figures_cover_a_whole_month_so_no_two_reports_differ_by_a_day(
    coordinator: StaffPersona, therapist: StaffPersona
) -> None:
    """Days 1-10 minus days 1-9 would give one day's count, suppressed or not."""
    for day, count in [(date(2026, 5, 3), 6), (date(2026, 5, 10), 1)]:
        FunnelCount.objects.create(
            day=day, campaign="forum-co", language="de", step="randomized", count=count
        )

    def randomized(user: StaffPersona, end: date, shared: bool = False) -> int | None:
        rows = selectors.funnel_report(
            user=user.user, start=date(2026, 5, 1), end=end, campaign="forum-co", shared=shared
        )
        return next(r.count for r in rows if r.step == "randomized")

    assert randomized(therapist, date(2026, 5, 9)) == randomized(therapist, date(2026, 5, 10)) == 7
    assert randomized(coordinator, date(2026, 5, 9), shared=True) == 7
    assert (
        randomized(coordinator, date(2026, 5, 9)),
        randomized(coordinator, date(2026, 5, 10)),
    ) == (
        6,
        7,
    )  # exact counts at their own site, for any days
    assert selectors.funnel_period(
        start=date(2026, 2, 3), end=date(2026, 2, 20), suppressed=True
    ) == (date(2026, 2, 1), date(2026, 2, 28))


def test_suppressed_figures_never_include_the_month_still_running(therapist: StaffPersona) -> None:
    """Read on two days, a month still running would give the day between by subtraction."""
    today = now().date()
    _seed({"randomized": 6}, day=_last_month())
    _seed({"randomized": 1}, day=today)
    rows = selectors.funnel_report(user=therapist.user, start=today, end=today)
    assert next(r.count for r in rows if r.step == "randomized") == 6
    start, end = selectors.funnel_period(start=today, end=today, suppressed=True)
    assert end < today.replace(day=1) and start.day == 1
