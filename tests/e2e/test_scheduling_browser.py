"""A participant books a course, moves one session, downloads the calendar file and cancels,
in Debian's Chromium: once with JavaScript (time zone detected) and once without (chosen)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from tests.server import RunningServer, running_server

pytestmark = pytest.mark.browser

SEED = (
    "from stopcsam.accounts.demo_data import seed_demo; seed_demo(); "
    "from stopcsam.scheduling.demo import seed_scheduling_demo; seed_scheduling_demo()"
)


@pytest.fixture(scope="module")
def scheduling_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings_module = {"DJANGO_SETTINGS_MODULE": "stopcsam.scheduling.tests.e2e_settings"}
    with running_server(tmp_path_factory.mktemp("sched"), settings_module) as server:
        server.manage("shell", "-c", SEED)
        yield server


def _sign_up(page: Any, url: str) -> None:
    page.goto(url + "/en/start/")
    page.get_by_role("button", name="Create my codename").click()
    page.get_by_label("I have written down my codename.").check()
    page.get_by_role("button", name="Continue").click()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_book_move_download_and_cancel(
    scheduling_server: RunningServer, browser: Any, javascript: bool, tmp_path: Path
) -> None:
    zone = "America/New_York" if javascript else "Europe/Lisbon"
    context = browser.new_context(
        java_script_enabled=javascript, locale="en-GB", timezone_id="America/New_York"
    )
    outside: list[str] = []
    context.on(
        "request",
        lambda r: None if r.url.startswith(scheduling_server.url) else outside.append(r.url),
    )
    page = context.new_page()
    _sign_up(page, scheduling_server.url)

    page.goto(scheduling_server.url + "/en/sessions/")
    if javascript:
        page.wait_for_url("**/en/sessions/?tz=America%2FNew_York")  # detected, no click
    page.get_by_role("link", name="Book your sessions").click()
    if not javascript:
        page.locator("select[name=tz]").select_option(zone)
        page.get_by_role("button", name="Show times").click()
    assert page.locator("select[name=tz]").input_value() == zone

    page.locator("input[name=start]").first.check()
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_text("Confirm your sessions").first.is_visible()
    page.get_by_role("button", name="Book these sessions").click()
    assert page.get_by_text("Your sessions are booked.").is_visible()
    assert page.get_by_role("link", name="Change time").count() == 4

    first_time = page.locator(".sessions time").first.inner_text()
    page.get_by_role("link", name="Change time").first.click()
    page.locator("input[name=start]").nth(1).check()
    page.get_by_role("button", name="Save the new time").click()
    assert page.get_by_text("Your session has been moved.").is_visible()
    assert page.locator(".sessions time").first.inner_text() != first_time

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Add all sessions to your calendar").click()
    path = tmp_path / "appointment.ics"
    download_info.value.save_as(path)
    body = path.read_bytes()
    events = list(Calendar.from_ical(body).walk("VEVENT"))
    assert len(events) == 4
    assert {str(e["summary"]) for e in events} == {"Appointment"}
    assert {e["dtstart"].params["TZID"] for e in events} == {zone}
    assert all(e.decoded("dtstart").astimezone(UTC) for e in events)
    assert b"therapist" not in body.lower() and b"anna" not in body.lower()

    page.get_by_role("link", name="Cancel").first.click()
    page.get_by_label("This session and all later ones").check()
    page.get_by_role("button", name="Cancel the session").click()
    assert page.get_by_text("The session has been cancelled.").is_visible()
    assert page.locator(".status-cancelled").count() == 4
    assert page.get_by_role("link", name="Book your sessions").is_visible()
    assert outside == []
    context.close()


def test_the_embedded_worker_runs_in_the_server(scheduling_server: RunningServer) -> None:
    assert "scheduling jobs run in this process" in scheduling_server.log_text()
