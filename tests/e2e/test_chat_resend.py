"""A message the server could not store is sent again by the page itself, on the same socket:
after an `error` frame with `unavailable` (database outage) or `rate_limited` the shipped
client keeps the message and resends it with the same client id after a backoff, without
waiting for a reconnect (docs/chat-protocol.md, "Writing a client"). The text box was cleared
when the message went, so a message that is never resent is lost to the participant.

The outage is played by Playwright's websocket routing: the route answers the page's `send`
frames with the server's `unavailable` error while the "database" is down, and passes every
other frame through to the real server. The flood limit is the real server's own.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.server import RunningServer, running_server

pytestmark = pytest.mark.browser

SEED = "from stopcsam.accounts.demo_data import seed_demo; seed_demo()"
CHAT_ENV = {"CHAT_DEMO_APPOINTMENTS": "1", "CHAT_TEST_MODE": "1"}
ADMIT = """
from stopcsam.accounts.models import StaffUser
from stopcsam.chat import services
from stopcsam.chat.models import ChatSession
services.session_admit(
    session=ChatSession.objects.get(public_id="PUBLIC_ID"),
    therapist=StaffUser.objects.get(username="therapist-de"),
)
"""
STORED = """
import json
from stopcsam.chat.models import ChatMessage
rows = ChatMessage.objects.filter(session__public_id="PUBLIC_ID").order_by("seq")
print("JSON" + json.dumps([[r.seq, r.sender, r.client_id] for r in rows]))
"""
# What the server says when the database refuses a batch (StorageUnavailableError).
UNAVAILABLE = "The message could not be saved. It was not sent; please try again."
FIRST = "I could not sleep again last night"
SECOND = "and I do not want to act on it"
# The page's own words for "your message is on its way" (data-t-* attributes, translated).
WAITING_TEXT = """() => {
  const t = document.getElementById("chat").dataset;
  return t.tRetrying || t.tSending;
}"""


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("resend"), CHAT_ENV) as server:
        server.manage("shell", "-c", SEED)
        yield server


@pytest.fixture
def participant(chat_server: RunningServer, browser: Any) -> Iterator[tuple[Any, str]]:
    """A participant in the waiting room of a new session, with JavaScript: (page, public id)."""
    booked = json.loads(chat_server.manage("chat_demo_session", "--therapist", "therapist-de"))
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(chat_server.url + "/en/login/")
    page.get_by_label("Your codename").fill(booked["codename"])
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    page.goto(chat_server.url + "/en/chat/")
    with page.expect_navigation():
        page.get_by_role("link", name="Session 1 of 4").click()
    assert page.get_by_role("heading", name="Waiting room").is_visible()
    yield page, page.url.rstrip("/").rsplit("/", 1)[1]
    context.close()


def admit(server: RunningServer, page: Any, public_id: str) -> None:
    """The therapist admits the participant (from the shell), and the page shows the chat."""
    server.manage("shell", "-c", ADMIT.replace("PUBLIC_ID", public_id))
    page.reload()
    page.get_by_label("Your message").wait_for()


def eventually(page: Any, check: Callable[[], bool], what: str, seconds: float) -> None:
    """Wait in Playwright, not in time.sleep: the sync API runs the route's handlers only
    while the test is inside one of its calls."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        page.wait_for_timeout(100)


def shown_mine(page: Any) -> list[str]:
    return [text.strip() for text in page.locator("#chat-log li.mine p").all_inner_texts()]


@dataclass
class FlakyDatabase:
    """Stands between the page and the server: while ``down``, every `send` frame is answered
    with the server's `unavailable` error and never reaches the server."""

    down: bool = True
    connections: int = 0
    sends: list[tuple[float, str, str]] = field(default_factory=list)  # (time, client id, body)

    def route(self, ws: Any) -> None:
        self.connections += 1
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "send":
                self.sends.append((time.monotonic(), frame["client_id"], frame["body"]))
                if self.down:
                    refusal = {
                        "type": "error",
                        "code": "unavailable",
                        "message": UNAVAILABLE,
                        "client_id": frame["client_id"],
                    }
                    ws.send(json.dumps(refusal))
                    return
            server.send(message)

        ws.on_message(from_page)

    def attempts(self, body: str) -> list[float]:
        return [at for at, _, sent in self.sends if sent == body]

    def client_ids(self, body: str) -> set[str]:
        return {client_id for _, client_id, sent in self.sends if sent == body}


def test_messages_refused_in_a_database_outage_arrive_without_a_reconnect(
    chat_server: RunningServer, participant: tuple[Any, str]
) -> None:
    page, public_id = participant
    database = FlakyDatabase()
    page.route_web_socket(re.compile(r"/ws/chat/"), database.route)
    admit(chat_server, page, public_id)
    box, status = page.get_by_label("Your message"), page.locator("#chat-status")

    for text in (FIRST, SECOND):
        box.fill(text)
        page.get_by_role("button", name="Send").click()
    assert box.input_value() == ""  # the page holds the only copy of both messages now
    eventually(page, lambda: len(database.attempts(FIRST)) >= 3, "never sent again", 10)
    # The participant sees that the messages are on their way, not an invitation to type
    # them again (which would store them twice).
    assert status.inner_text() == page.evaluate(WAITING_TEXT)
    assert shown_mine(page) == []
    database.down = False

    eventually(page, lambda: shown_mine(page) == [FIRST, SECOND], "the messages never arrived", 15)
    eventually(page, lambda: status.inner_text() == "", "the page still says it is sending", 5)
    assert database.connections == 1  # sent again on the same socket, not after a reconnect
    first, second = database.client_ids(FIRST), database.client_ids(SECOND)
    assert len(first) == len(second) == 1  # every attempt with the same client id
    tries = database.attempts(FIRST)
    assert tries[1] - tries[0] >= 0.9  # a backoff, not a loop against a database that is down
    assert tries[2] - tries[1] >= 1.8  # and it doubles
    stored = chat_server.shell_json(STORED.replace("PUBLIC_ID", public_id))
    assert stored == [[1, "participant", *first], [2, "participant", *second]]  # once, in order


def test_messages_refused_by_the_flood_limit_arrive_without_a_reconnect(
    chat_server: RunningServer, participant: tuple[Any, str]
) -> None:
    page, public_id = participant
    sockets: list[Any] = []
    page.on("websocket", lambda socket: sockets.append(socket))
    admit(chat_server, page, public_id)
    texts = [f"thought number {n}" for n in range(1, 13)]  # the burst allows 10 messages

    page.evaluate(
        """(texts) => {
          const form = document.getElementById('compose');
          for (const text of texts) {
            form.querySelector('textarea').value = text;
            form.requestSubmit();
          }
        }""",
        texts,
    )

    eventually(page, lambda: shown_mine(page) == texts, f"shown: {shown_mine(page)}", 15)
    assert len(sockets) == 1  # no reconnect did it
    stored = chat_server.shell_json(STORED.replace("PUBLIC_ID", public_id))
    assert [row[0] for row in stored] == list(range(1, 13))
    assert len({row[2] for row in stored}) == 12  # each message stored once


def test_a_page_signed_out_elsewhere_loads_again_and_shows_the_login(
    chat_server: RunningServer, participant: tuple[Any, str], browser: Any
) -> None:
    """The participant logs out in another tab: the server closes the chat's socket (4403)
    and the page loads again, which leads to the login, instead of a page that looks live
    and keeps what is typed as "Sending…" for ever."""
    page, public_id = participant
    admit(chat_server, page, public_id)
    other = page.context.new_page()
    other.goto(chat_server.url + "/en/me/")
    with other.expect_navigation():
        other.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login/"), timeout=10_000)
    assert page.get_by_label("Your codename").is_visible()


def test_messages_kept_when_the_sign_in_ends_go_back_into_the_box(
    chat_server: RunningServer, participant: tuple[Any, str]
) -> None:
    """Signed out in another tab while two messages wait for a database that is down: the
    socket closes (4403), and the page keeps their text in the box and says so, instead of
    loading again and losing them (the box was cleared when they went)."""
    page, public_id = participant
    database = FlakyDatabase()
    page.route_web_socket(re.compile(r"/ws/chat/"), database.route)
    admit(chat_server, page, public_id)
    box = page.get_by_label("Your message")
    for text in (FIRST, SECOND):
        box.fill(text)
        page.get_by_role("button", name="Send").click()
    eventually(page, lambda: len(database.attempts(SECOND)) >= 1, "never sent", 10)
    other = page.context.new_page()
    other.goto(chat_server.url + "/en/me/")
    with other.expect_navigation():
        other.get_by_role("button", name="Log out").click()
    eventually(page, lambda: box.input_value() == f"{FIRST}\n{SECOND}", "not given back", 10)
    assert "no longer signed in" in page.locator("#chat-status").inner_text()
    page.wait_for_timeout(1000)
    assert "/chat/s/" in page.url and box.input_value() == f"{FIRST}\n{SECOND}"  # it stays
