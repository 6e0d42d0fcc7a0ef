"""One full chat session in Debian's Chromium, a therapist and a participant in two browser
contexts: the waiting room, admit, chat both ways, the timer warning (a shortened session),
the end and the feedback. Once with the participant's JavaScript on, once off (Tor Browser on
"Safest"); the therapist's console always runs its script."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import RunningServer, running_server

pytestmark = pytest.mark.browser

SEED = "from stopcsam.accounts.demo_data import seed_demo; seed_demo()"
TOTP = (
    "from django_otp.plugins.otp_totp.models import TOTPDevice; from django_otp.oath import TOTP;"
    "d = TOTPDevice.objects.get(user__username='therapist-de');"
    "print(f'{TOTP(d.bin_key).token():06d}')"
)
CHAT_ENV = {
    "CHAT_DEMO_APPOINTMENTS": "1",
    "CHAT_TEST_MODE": "1",
    "CHAT_SESSION_SECONDS": "40",  # the warning comes 5 s after admission
    "CHAT_WARNING_SECONDS": "35",
    "CHAT_GRACE_SECONDS": "120",
    "CHAT_TICK_SECONDS": "1",
    "CHAT_NOJS_REFRESH_SECONDS": "1",
}
WORRY = "I am worried about my urges"
REPLY = "How was your week? See https://example.org/help"


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("chat"), CHAT_ENV) as server:
        server.manage("shell", "-c", SEED)
        yield server


@pytest.fixture(scope="module")
def therapist_state(chat_server: RunningServer, browser: Any, tmp_path_factory: Any) -> str:
    """Log the therapist in once (a one-time code works once) and keep the cookies."""
    from stopcsam.accounts.demo_data import DEMO_PASSWORD

    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(chat_server.url + "/en/staff/login/")
    page.locator("input[name=username]").fill("therapist-de")
    page.locator("input[name=password]").fill(DEMO_PASSWORD)
    page.locator("input[name=otp_token]").fill(chat_server.manage("shell", "-c", TOTP).split()[-1])
    page.locator("main button[type=submit]").click()
    page.wait_for_load_state()
    assert "/en/staff/login/" not in page.url, page.locator("main").inner_text()
    path = str(Path(tmp_path_factory.mktemp("state")) / "therapist.json")
    context.storage_state(path=path)
    context.close()
    return path


def reload_quietly(page: Any) -> None:
    """Load the page again; the no-JS page's own refresh may be navigating at that moment,
    which aborts the reload (net::ERR_ABORTED): the next round checks again."""
    from playwright.sync_api import Error

    from tests.e2e.journey import NAVIGATION_RACE

    try:
        page.reload()
    except Error as fault:
        if not any(sign in str(fault) for sign in NAVIGATION_RACE):
            raise


def eventually(check: Callable[[], bool], refresh: Callable[[], Any], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, (
            "did not happen in time: " + refresh.__self__.page.content()[-3000:]
            if hasattr(refresh, "__self__") and hasattr(refresh.__self__, "page")
            else "did not happen in time"
        )
        refresh()
        time.sleep(0.5)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_full_session(
    chat_server: RunningServer, browser: Any, therapist_state: str, javascript: bool
) -> None:
    booked = json.loads(chat_server.manage("chat_demo_session", "--therapist", "therapist-de"))
    outside: list[str] = []

    def local_only(context: Any) -> Any:
        context.on(
            "request",
            lambda r: None if r.url.startswith(chat_server.url) else outside.append(r.url),
        )
        return context

    person = local_only(browser.new_context(java_script_enabled=javascript, locale="en-GB"))
    staff = local_only(browser.new_context(storage_state=therapist_state, locale="en-GB"))
    participant, therapist = person.new_page(), staff.new_page()

    def participant_sees(what: Any) -> None:
        """With JavaScript the page updates itself; without, the participant checks again."""
        if javascript:
            what.wait_for(timeout=15_000)
        else:
            check_again = participant.get_by_role("button", name="Check for new messages")
            eventually(lambda: what.count() == 1, check_again.click)

    participant.goto(chat_server.url + "/en/login/")
    participant.get_by_label("Your codename").fill(booked["codename"])
    with participant.expect_navigation():  # logged in before going on
        participant.get_by_role("button", name="Log in").click()
    participant.goto(chat_server.url + "/en/chat/")
    with participant.expect_navigation():
        participant.get_by_role("link", name="Session 1 of 4").click()
    assert participant.get_by_role("heading", name="Waiting room").is_visible()
    public_id = participant.url.rstrip("/").rsplit("/", 1)[1]

    therapist.goto(f"{chat_server.url}/en/chat/console/{public_id}/")
    assert therapist.locator("#study-id").inner_text().startswith("P-")
    therapist.get_by_role("button", name="Admit participant").click()
    therapist.get_by_label("Your message").wait_for()

    # The waiting room moves on by itself: a script reload, or the no-JS meta refresh, into a
    # live page that refreshes itself too; that one offers a link to write, since a refresh
    # would wipe a message being written (the page behind it waits for the participant).
    if not javascript:
        write = participant.get_by_role("link", name="Write a message")
        write.wait_for(timeout=15_000)
        assert participant.locator('meta[http-equiv="refresh"]').count() == 1
        with participant.expect_navigation():
            write.click()
    participant.get_by_label("Your message").wait_for(timeout=15_000)
    participant.get_by_label("Your message").fill(WORRY)
    participant.get_by_role("button", name="Send").click()
    therapist.locator("#chat-log li.participant", has_text=WORRY).wait_for(timeout=10_000)

    therapist.get_by_label("Your message").fill(REPLY)
    therapist.get_by_role("button", name="Send").click()
    participant_sees(participant.locator("#chat-log li.therapist", has_text="How was your week?"))
    # Each page marks what it shows as read, with JavaScript or without, and the other side
    # sees "Read" under its message.
    therapist.locator("#chat-log li.mine .seen", has_text="Read").wait_for(timeout=10_000)
    participant_sees(participant.locator("#chat-log li.mine .seen", has_text="Read"))
    assert participant.locator("#chat-log a").count() == 0  # the link stays plain text
    assert participant.locator("#chat-log li").count() == 2  # each message once

    # A reply being written survives saving the notes, which loads the console again.
    draft = "Shall we look at last week together?"
    therapist.get_by_label("Your message").fill(draft)
    with therapist.expect_navigation():
        therapist.get_by_role("button", name="Save notes").click()
    assert therapist.get_by_label("Your message").input_value() == draft

    # The timer warns five minutes (here: 35 s) before the end.
    therapist.locator("#chat-timer.warning").wait_for(timeout=15_000)
    participant_sees(participant.locator("#chat-timer.warning"))

    therapist.get_by_role("button", name="End session").click()
    therapist.get_by_role("button", name="Yes, end the session").click()  # asked once more
    ended = participant.get_by_role("heading", name="The session has ended")
    if javascript:
        ended.wait_for(timeout=10_000)
    else:
        eventually(ended.is_visible, lambda: reload_quietly(participant))
    participant.get_by_label("Helpful", exact=True).check()
    participant.get_by_role("button", name="Send feedback").click()
    # Back on the session's own page (a redirect): the thanks, and the way to the sessions.
    assert participant.get_by_text("Thank you for your feedback.").is_visible()
    assert participant.get_by_role("link", name="Your chat sessions").is_visible()
    assert outside == []
    person.close()
    staff.close()


# A proxy on the way that refuses websockets: the socket never opens, the page itself loads.
BLOCK_WEBSOCKETS = """
window.WebSocket = class {
  constructor() {
    this.readyState = 0;
    setTimeout(() => {
      this.readyState = 3;
      if (this.onclose) { this.onclose({ code: 1006 }); }
    }, 20);
  }
  send() {}
  close() {}
};
window.WebSocket.OPEN = 1;
"""


def test_a_session_with_websockets_blocked_on_the_way(
    chat_server: RunningServer, browser: Any, therapist_state: str
) -> None:
    """JavaScript on, websockets refused by something on the way: the chat said
    'Reconnecting…' for good (a review finding). It falls back to the page: it sends by the
    form and loads itself again, and the therapist, whose socket works, chats live."""
    booked = json.loads(chat_server.manage("chat_demo_session", "--therapist", "therapist-de"))
    person = browser.new_context(locale="en-GB")
    person.add_init_script(BLOCK_WEBSOCKETS)
    staff = browser.new_context(storage_state=therapist_state, locale="en-GB")
    participant, therapist = person.new_page(), staff.new_page()
    participant.goto(chat_server.url + "/en/login/")
    participant.get_by_label("Your codename").fill(booked["codename"])
    with participant.expect_navigation():
        participant.get_by_role("button", name="Log in").click()
    participant.goto(chat_server.url + "/en/chat/")
    with participant.expect_navigation():
        participant.get_by_role("link", name="Session 1 of 4").click()
    public_id = participant.url.rstrip("/").rsplit("/", 1)[1]
    blocked = participant.get_by_text("The live connection is blocked on this network.")
    blocked.wait_for(timeout=20_000)  # four connections that never opened: 7.5 s

    therapist.goto(f"{chat_server.url}/en/chat/console/{public_id}/")
    therapist.get_by_role("button", name="Admit participant").click()
    therapist.get_by_label("Your message").wait_for()
    participant.get_by_label("Your message").wait_for(timeout=15_000)  # it loaded itself
    blocked.wait_for()  # and knew at once this time
    participant.get_by_label("Your message").fill(WORRY)
    with participant.expect_navigation():  # the form sends it
        participant.get_by_role("button", name="Send").click()
    therapist.locator("#chat-log li.participant", has_text=WORRY).wait_for(timeout=10_000)
    therapist.get_by_label("Your message").fill(REPLY)
    therapist.get_by_role("button", name="Send").click()
    participant.locator("#chat-log li.therapist", has_text="How was your week?").wait_for(
        timeout=15_000
    )
    assert participant.locator("#chat-log li").count() == 2  # each message once
    person.close()
    staff.close()
