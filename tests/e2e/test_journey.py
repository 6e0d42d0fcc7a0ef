"""The whole journey in Debian's Chromium (DESIGN §3, issue 7), against a real server process
with a movable test clock and a known randomization seed.

A participant on a phone goes from the front door through screening, codename, consent and the
baseline questionnaire into the chat arm, books a course of four sessions (by keyboard), meets
their therapist (on a desktop, logged in with password and one-time code) in the chat, gives
feedback, answers the two-week questionnaire, and withdraws with erasure: their rows are gone.
A second participant is allocated to the waiting list and is offered the chat after follow-up.

Every participant page is audited (axe-core with JavaScript on, page budget, no third-party
request), with JavaScript on and off, in English, German, Czech and Spanish. The en-js run
takes the screenshots (`make screenshots` writes them to docs/screenshots/).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from tests.e2e.journey import (
    DEMO_PROTOCOL,
    JOURNEY_ENV,
    PHONE,
    ZONES,
    JourneyAudit,
    StaffLogins,
    clock_to,
    eventually,
    participant_rows,
    participant_state,
    screenshot,
    seed_for,
    tab_to,
)
from tests.server import RunningServer, running_server

pytestmark = pytest.mark.browser

CHAT_JOURNEYS = [("en", True), ("de", False), ("cs", True)]
WAITLIST_JOURNEY = ("es", False)
WORRY = "I am worried about my urges"
REPLY = "Thank you for telling me. What helps you when the urge comes?"


@pytest.fixture(scope="module")
def journey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The production settings in demo mode with the test clock, the demo protocol sealed
    with a seed that sends the first participant of each chat language to the chat arm and
    the first of the waiting-list language to the waiting list, and the demo staff."""
    arms = {language: ["chat"] for language, _ in CHAT_JOURNEYS}
    arms[WAITLIST_JOURNEY[0]] = ["waitlist"]
    with running_server(tmp_path_factory.mktemp("journey"), JOURNEY_ENV) as server:
        server.manage("study_load_protocol", str(DEMO_PROTOCOL), "--seed", seed_for(arms))
        server.manage("seed_demo")
        yield server


@pytest.fixture(scope="module")
def staff_logins(
    journey_server: RunningServer, browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> StaffLogins:
    return StaffLogins(journey_server, browser, tmp_path_factory.mktemp("staff"))


@dataclass
class Person:
    """A participant's phone browser, and what every step needs to know about it."""

    server: RunningServer
    context: Any
    page: Any
    audit: JourneyAudit
    language: str
    javascript: bool
    shots: bool

    @property
    def home(self) -> str:
        return f"{self.server.url}/{self.language}"

    def visit(self, url: str) -> None:
        self.page.goto(url)
        self.seen()

    def seen(self, shot: str = "") -> None:
        """Audit the page now shown (and photograph it in the en-js run)."""
        self.audit.check(self.page)
        if shot:
            screenshot(self.page, shot, enabled=self.shots)

    def click(self, selector: str, shot: str = "") -> None:
        self.page.locator(selector).first.click()
        self.seen(shot)


def _person(server: RunningServer, browser: Any, language: str, javascript: bool) -> Person:
    context = browser.new_context(
        java_script_enabled=javascript,
        locale=language,
        timezone_id=ZONES[language],
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
    )
    audit = JourneyAudit(server.url, javascript)
    audit.attach(context)
    page = context.new_page()
    audit.watch(page)
    shots = (language, javascript) == ("en", True)
    return Person(server, context, page, audit, language, javascript, shots)


# --- the participant's steps ---------------------------------------------------------------------


def enrol(person: Person) -> str:
    """Front door, screening, codename and consent; returns the codename."""
    page, language = person.page, person.language
    page.goto(person.home + "/")
    person.seen("front-door")
    assert page.locator("html").get_attribute("lang") == language
    person.click(f"main a.button[href='/{language}/study/screening/']", "screening")
    page.locator("input[name=age]").fill("34")
    page.locator("input[name=recent_use][value=yes]").check()
    page.locator(f"input[name=language][value={language}]").check()
    page.locator("input[name=in_treatment][value=no]").check()
    person.click("main button[type=submit]")
    assert page.url.endswith(f"/{language}/study/eligible/")
    person.click("main a.button")  # create an anonymous account
    person.click("main button[type=submit]", "codename")
    codename = page.locator("#codename").inner_text().strip()
    assert len(codename.split()) >= 7
    page.locator("#saved").check()
    person.click("main button[type=submit]", "consent")
    assert page.url.endswith(f"/{language}/study/consent/")
    boxes = page.locator("main input[type=checkbox]")
    assert boxes.count() == 4
    for box in boxes.all():
        box.check()
    person.click("main button[type=submit]")
    assert page.url == f"{person.home}/study/"
    return codename


def answer_questionnaires(person: Person, time_point: str, expected: int) -> None:
    """Answer every questionnaire of a time point listed on the participant's home."""
    page = person.page
    links = f"main a[href*='/study/questionnaire/{time_point}/']"
    assert page.locator(links).count() == expected
    for _ in range(expected):
        person.click(links)
        radio_names: list[str] = []
        for radio in page.locator("main input[type=radio]").all():
            name = radio.get_attribute("name")
            if name not in radio_names:
                radio_names.append(name)
                radio.check()
        for number in page.locator("main input[type=number]").all():
            number.fill("1")
        person.click("main button[name=submit]")
        if page.url.endswith("/study/allocation/"):
            return
    assert page.locator(links).count() == 0


def book_by_keyboard(person: Person) -> None:
    """Choose the first offered time and confirm the course, with the keyboard alone."""
    page = person.page
    assert page.url.startswith(f"{person.home}/sessions/book/")
    person.seen("booking")
    assert page.locator("input[name=start]").count() > 0
    tab_to(page, "input[name=start]")
    page.keyboard.press("Space")
    assert page.locator("input[name=start]:checked").count() == 1
    tab_to(page, "form[action$='/book/propose/'] button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/sessions/book/propose/**")
    person.seen()
    assert page.locator("main ol.sessions > li").count() == 4
    tab_to(page, "main form[action$='/book/confirm/'] button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    person.seen()
    assert page.url == f"{person.home}/sessions/"
    assert page.locator("main .sessions .status-booked").count() == 4


def send_by_keyboard(person: Person, text: str) -> None:
    """Reach the message box and the send button with Tab, type and send with Enter."""
    page = person.page
    tab_to(page, "#compose textarea[name=body]")
    page.keyboard.type(text)
    tab_to(page, "#compose button[value=send]")
    if person.javascript:  # sent over the websocket
        page.keyboard.press("Enter")
    else:  # posted by the form
        with page.expect_navigation():
            page.keyboard.press("Enter")
        person.seen()
    page.locator("#chat-log li.participant", has_text=text).wait_for(timeout=10_000)


def wait_for(person: Person, selector: str, *, without_js: str = "") -> None:
    """Wait until the participant's page shows ``selector``. With JavaScript the page updates
    itself; without, the waiting room refreshes itself, and elsewhere the participant presses
    the button ``without_js`` ("reload": the browser's reload) until the news is there."""
    page = person.page
    target = page.locator(selector)
    if person.javascript or not without_js:
        target.first.wait_for(timeout=15_000)
    else:
        step = page.reload if without_js == "reload" else page.locator(without_js).first.click
        eventually(lambda: target.count() > 0, step)
    person.seen()


def withdraw_and_erase(person: Person) -> None:
    page = person.page
    person.visit(f"{person.home}/study/withdraw/")
    page.locator("input[name=choice][value=erase]").check()
    page.locator("input[name=confirm]").check()
    person.click("main button[type=submit]")


def codename_still_works(person: Person, codename: str) -> bool:
    page = person.page
    person.visit(f"{person.home}/login/")
    page.locator("input[name=codename]").fill(codename)
    person.click("main button[type=submit]")
    return page.locator(".errorlist").count() == 0


# --- the therapist's steps ------------------------------------------------------------------------


def therapist_console(
    staff: Any,
    audit: JourneyAudit,
    server: RunningServer,
    appointment: dict[str, Any],
    public_id: str,
    shots: bool,
) -> Any:
    """The therapist's week (with the session in it), the session list, then the console."""
    page = staff.new_page()
    audit.watch(page)
    page.goto(server.url + "/en/sessions/staff/")
    audit.check(page)
    assert page.locator(f"main a[href='/en/sessions/staff/a/{appointment['ref']}/']").count() == 1
    screenshot(page, "therapist-calendar", enabled=shots)
    page.goto(server.url + "/en/chat/console/")
    audit.check(page)
    page.locator(f"main a[href='/en/chat/console/{public_id}/']").click()
    audit.check(page)
    assert page.locator("#study-id").inner_text().startswith("S")
    assert page.locator("#chat[data-state=waiting]").count() == 1
    return page


# --- the journeys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "javascript"),
    CHAT_JOURNEYS,
    ids=[f"{lang}-{'js' if js else 'no-js'}" for lang, js in CHAT_JOURNEYS],
)
def test_from_the_front_door_to_erasure_through_the_chat(
    journey_server: RunningServer,
    browser: Any,
    staff_logins: StaffLogins,
    language: str,
    javascript: bool,
) -> None:
    server = journey_server
    person = _person(server, browser, language, javascript)
    page = person.page

    # DESIGN §3 steps 1-6: front door, screening, codename, consent, baseline, randomization.
    codename = enrol(person)
    answer_questionnaires(person, "baseline", 3)
    assert page.url == f"{person.home}/study/allocation/"
    assert page.locator("#arm").inner_text().strip()
    assert participant_state(server, codename)["arm"] == "chat"

    # Step 7: a course of four weekly sessions, booked with the keyboard alone.
    person.click(f"main a.button[href='/{language}/sessions/book/']")
    book_by_keyboard(person)
    state = participant_state(server, codename)
    appointments = state["appointments"]
    assert [a["status"] for a in appointments] == ["booked"] * 4
    assert len({a["therapist"] for a in appointments}) == 1
    first = appointments[0]
    starts = [datetime.fromisoformat(a["start"]) for a in appointments]
    gaps = [later - earlier for earlier, later in pairwise(starts)]
    assert all(timedelta(days=5) <= gap <= timedelta(days=9) for gap in gaps), gaps  # weekly

    # The clock moves to the first session; the participant enters the waiting room.
    clock_to(server, first["start"])
    person.visit(f"{person.home}/study/")
    person.click(f"main a[href='/{language}/chat/']")
    assert page.locator("main a[href*='/chat/s/']").count() == 4
    person.click("main a[href*='/chat/s/']")
    assert page.locator("#chat[data-state=waiting]").count() == 1
    public_id = page.url.rstrip("/").rsplit("/", 1)[1]

    # Step 8: the therapist, on a desktop, finds the session in the console and admits.
    staff = staff_logins.context(first["therapist"])
    staff_audit = JourneyAudit(server.url, True)
    staff_audit.attach(staff)
    console = therapist_console(staff, staff_audit, server, first, public_id, person.shots)
    console.locator("button[name=action][value=admit]").click()
    console.locator("#compose textarea[name=body]").wait_for()
    staff_audit.check(console)

    if person.javascript:
        wait_for(person, "#compose textarea[name=body]")
    else:  # the waiting room refreshes into a live page that refreshes too: a link to write
        wait_for(person, "a[href*='write=1']")
        with person.page.expect_navigation():
            person.click("a[href*='write=1']")
    send_by_keyboard(person, WORRY)
    console.locator("#chat-log li.participant", has_text=WORRY).wait_for(timeout=10_000)
    console.locator("#compose textarea[name=body]").fill(REPLY)
    console.locator("#compose button[value=send]").click()
    wait_for(person, "#chat-log li.therapist", without_js="form.refresh button")
    assert page.locator("#chat-log li.msg").count() == 2  # each message once
    screenshot(page, "chat-participant", enabled=person.shots)
    console.locator("#chat-log li.therapist", has_text="Thank you for telling me").wait_for()
    screenshot(console, "chat-therapist", enabled=person.shots)

    # The therapist ends the session; the participant gives feedback.
    console.locator(".end button[value=end]").click()
    console.locator("#confirm-end button[value=end]").click()  # asked once more
    console.locator("#chat[data-state=ended]").wait_for()
    staff_audit.check(console)
    wait_for(
        person, f"form[action='/{language}/chat/s/{public_id}/feedback/']", without_js="reload"
    )
    page.locator("input[name=rating][value='4']").check()
    person.click(f"form[action='/{language}/chat/s/{public_id}/feedback/'] button")
    state = participant_state(server, codename)
    session = next(s for s in state["sessions"] if s["public_id"] == public_id)
    assert (session["state"], session["feedback"]) == ("ended", 4)
    assert session["appointment_ref"] == first["ref"]
    assert state["appointments"][0]["status"] == "attended"
    assert state["messages"] == 2
    person.visit(f"{person.home}/sessions/")
    assert page.locator("main .sessions .status-attended").count() == 1

    # Step 9: two weeks after randomization, the two-week questionnaire is due.
    clock_to(server, _days_after(state["randomized_at"], 14))
    person.visit(f"{person.home}/study/")
    answer_questionnaires(person, "week2", 2)

    # Withdrawal: stop and erase. Every row of the participant is gone, and so is the codename.
    rows = participant_rows(server, state)
    assert all(rows[kind] > 0 for kind in ("Participant", "Enrolment", "Appointment")), rows
    assert rows["ChatSession"] == 4 and rows["ChatMessage"] == 2 and rows["Response"] == 5, rows
    withdraw_and_erase(person)
    assert participant_rows(server, state) == dict.fromkeys(rows, 0)
    assert not codename_still_works(person, codename)

    person.audit.assert_clean()
    staff_audit.assert_clean()
    assert person.audit.pages_checked >= 25
    staff.close()
    person.context.close()


def test_the_waiting_list_is_offered_the_chat_after_four_weeks(
    journey_server: RunningServer, browser: Any
) -> None:
    server = journey_server
    language, javascript = WAITLIST_JOURNEY
    person = _person(server, browser, language, javascript)
    page = person.page
    booking = f"main a.button[href='/{language}/sessions/book/']"

    codename = enrol(person)
    answer_questionnaires(person, "baseline", 3)
    assert page.url == f"{person.home}/study/allocation/"
    state = participant_state(server, codename)
    assert (state["arm"], state["chat_offered"]) == ("waitlist", False)
    assert page.locator(booking).count() == 0
    person.visit(f"{person.home}/sessions/book/")  # booking is closed to the waiting list
    assert page.url == f"{person.home}/sessions/"
    assert page.locator(booking).count() == 0

    # Two weeks on, the questionnaires of week 2 leave the chat closed.
    clock_to(server, _days_after(state["randomized_at"], 14))
    person.visit(f"{person.home}/study/")
    answer_questionnaires(person, "week2", 2)
    assert participant_state(server, codename)["chat_offered"] is False
    # Four weeks on (the demo protocol's waiting list, as in STOP-CSAM), week 4's
    # questionnaires are due; answering them opens the chat.
    clock_to(server, _days_after(state["randomized_at"], 28))
    person.visit(f"{person.home}/study/")
    assert page.locator(booking).count() == 0
    answer_questionnaires(person, "post", 3)  # not the one about sessions it has not had
    assert participant_state(server, codename)["chat_offered"] is True
    person.click(booking)
    assert page.url.startswith(f"{person.home}/sessions/book/")
    assert page.locator("input[name=start]").count() > 0

    person.audit.assert_clean()
    person.context.close()


def _days_after(instant: str, days: int) -> str:
    """An hour into the window that opens ``days`` after ``instant``."""
    return (datetime.fromisoformat(instant) + timedelta(days=days, hours=1)).isoformat()
