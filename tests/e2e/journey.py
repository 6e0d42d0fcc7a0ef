"""Helpers for the journey suite (test_journey.py): the server's test-only set-up, reading the
server's database through `stopcsam shell`, the page audit of every visited page, keyboard
checks, staff logins and screenshots."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import stopcsam.study
from tests.e2e.audit import PageAudit
from tests.server import RunningServer

DEMO_PROTOCOL = Path(stopcsam.study.__file__).parent / "protocols" / "demo.yaml"
# The journey's screenshots go to STOPCSAM_SCREENSHOTS (`make screenshots` names
# docs/screenshots), or else to a temporary directory: a test run leaves the checkout as it was.
SCREENSHOTS = Path(
    os.environ.get("STOPCSAM_SCREENSHOTS") or Path(tempfile.gettempdir()) / "stopcsam-screenshots"
)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# The default zone scheduling shows each language (scheduling/forms.py): the browser is put
# there too, so the time-zone script has nothing to change and no extra navigation happens.
ZONES = {
    "en": "Europe/London",
    "de": "Europe/Berlin",
    "cs": "Europe/Prague",
    "es": "Europe/Madrid",
    "pt": "Europe/Lisbon",
}

# Demo mode allows the test clock (core/checks.py); keys still come from tests/server.py.
JOURNEY_ENV = {
    "STOPCSAM_DEMO": "1",
    "STOPCSAM_TEST_CLOCK": "1",
    "CHAT_TICK_SECONDS": "1",
    "CHAT_NOJS_REFRESH_SECONDS": "1",
}


# --- the randomization seed -------------------------------------------------------------------


def _protocol() -> Any:
    from stopcsam.study.protocol import protocol_from_dict

    return protocol_from_dict(yaml.safe_load(DEMO_PROTOCOL.read_text(encoding="utf-8")))


def stratum_of(language: str) -> str:
    """The stratum a participant of this language joins, as study.services computes it."""
    protocol = _protocol()
    site = protocol.site_by_language.get(language, "")
    return "|".join(site if factor == "site" else language for factor in protocol.strata)


def seed_for(first_arms: Mapping[str, list[str]]) -> str:
    """A seed whose allocation sequence starts with the wanted arms in each language's stratum,
    found by computing the sequence with the study's own randomization module."""
    from stopcsam.study import randomization

    protocol = _protocol()
    base, multipliers = tuple(protocol.block_base()), protocol.block_multipliers
    for attempt in range(10_000):
        seed = hashlib.sha256(f"journey-{attempt}".encode()).hexdigest()
        if all(
            randomization.allocations(seed, stratum_of(lang), len(arms), base, multipliers) == arms
            for lang, arms in first_arms.items()
        ):
            return seed
    raise AssertionError(f"no seed gives {first_arms}")


# --- reading the server's database --------------------------------------------------------------

_FIND = """
import json
from stopcsam.accounts.codenames import lookup_digest, normalise
from stopcsam.accounts.models import Participant
from stopcsam.chat.models import ChatMessage, ChatSession
from stopcsam.scheduling.models import Appointment
from stopcsam.study.models import Enrolment
p = Participant.objects.get(codename_lookup=lookup_digest(normalise(CODENAME)))
e = Enrolment.objects.filter(participant=p).first()
sessions = list(ChatSession.objects.filter(participant=p).order_by("starts_at"))
print(json.dumps({
    "participant": p.pk,
    "enrolment": e.pk if e else None,
    "arm": e.arm if e else "",
    "chat_offered": bool(e and e.chat_offered),
    "randomized_at": e.randomized_at.isoformat() if e and e.randomized_at else None,
    "appointments": [
        {"ref": a.ref, "start": a.start.isoformat(), "status": a.status,
         "therapist": a.therapist.username}
        for a in Appointment.objects.filter(participant=p).select_related("therapist")
    ],
    "sessions": [
        {"pk": s.pk, "public_id": s.public_id, "state": s.state, "feedback": s.feedback,
         "appointment_ref": s.appointment_ref}
        for s in sessions
    ],
    "messages": ChatMessage.objects.filter(session__participant=p).count(),
}))
"""

_ROWS = """
import json
from stopcsam.accounts.models import Participant
from stopcsam.chat.models import ChatMessage, ChatSession
from stopcsam.scheduling.models import Appointment, Course
from stopcsam.study.models import ConsentRecord, Enrolment, Response
print(json.dumps({
    "Participant": Participant.objects.filter(pk=PK).count(),
    "Enrolment": Enrolment.objects.filter(pk=ENROLMENT).count(),
    "ConsentRecord": ConsentRecord.objects.filter(enrolment_id=ENROLMENT).count(),
    "Response": Response.objects.filter(enrolment_id=ENROLMENT).count(),
    "Course": Course.objects.filter(participant_id=PK).count(),
    "Appointment": Appointment.objects.filter(participant_id=PK).count(),
    "ChatSession": ChatSession.objects.filter(participant_id=PK).count(),
    "ChatMessage": ChatMessage.objects.filter(session_id__in=SESSIONS).count(),
}))
"""


def _shell_json(server: RunningServer, code: str) -> Any:
    return json.loads(server.manage("shell", "-c", code).strip().splitlines()[-1])


def participant_state(server: RunningServer, codename: str) -> dict[str, Any]:
    """Everything the journey checks about one participant, found by their codename."""
    found: dict[str, Any] = _shell_json(server, f"CODENAME = {codename!r}\n" + _FIND)
    return found


def participant_rows(server: RunningServer, state: Mapping[str, Any]) -> dict[str, int]:
    """How many rows of each kind still belong to the participant described by ``state``."""
    sessions = [s["pk"] for s in state["sessions"]]
    header = f"PK = {state['participant']}\nENROLMENT = {state['enrolment']}\n"
    rows: dict[str, int] = _shell_json(server, header + f"SESSIONS = {sessions!r}\n" + _ROWS)
    return rows


def clock_to(server: RunningServer, instant: str) -> str:
    """Move the server's test clock to an ISO instant; returns the server's new "now"."""
    return server.manage("testclock", instant).strip()


# --- the page audit of every page visited --------------------------------------------------------


@dataclass
class JourneyAudit(PageAudit):
    """PageAudit that also records every document the participant's browser showed, so the
    test can prove that no page of the journey went unchecked."""

    shown: list[str] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)

    def watch(self, page: Any) -> None:
        page.on("framenavigated", self._on_navigated)

    def _on_navigated(self, frame: Any) -> None:
        if frame.parent_frame is None and frame.url.startswith(self.origin):
            self.shown.append(_document(frame.url))

    def check(self, page: Any) -> None:
        super().check(page)
        self.checked.add(_document(page.url))

    def assert_clean(self) -> None:
        super().assert_clean()
        unchecked = sorted(set(self.shown) - self.checked)
        assert unchecked == [], f"pages shown but never audited: {unchecked}"


def _document(url: str) -> str:
    """The page a URL shows: without its fragment, and without the ``r`` that a chat page's
    automatic refresh alternates (chat/views.py ``_refreshing``) to reload the same page."""
    return re.sub(r"[?&]r=[01]$", "", url.split("#", 1)[0])


# --- keyboard -------------------------------------------------------------------------------------

FOCUS_VISIBLE = """element => {
  const style = getComputedStyle(element);
  return (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0)
      || style.boxShadow !== "none";
}"""


def tab_to(page: Any, selector: str, *, limit: int = 60) -> list[str]:
    """Press Tab until an element matching ``selector`` has the focus; returns the stops
    passed on the way. Fails when the control cannot be reached by keyboard, or when the
    focus on it is not visible."""
    stops: list[str] = []
    target = page.locator(selector)
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.locator(":focus")
        if focused.count() == 0:
            stops.append("(nothing)")
            continue
        stops.append(focused.evaluate("e => e.tagName + (e.name ? '[' + e.name + ']' : '')"))
        if focused.evaluate("(e, s) => e.matches(s)", selector):
            assert focused.evaluate(FOCUS_VISIBLE), f"focus on {selector} is not visible"
            assert target.count() >= 1
            return stops
    raise AssertionError(f"Tab never reached {selector}; stops: {stops}")


# --- staff ----------------------------------------------------------------------------------------


@dataclass
class StaffLogins:
    """Each therapist logs in once (a one-time code works once); the cookies are kept."""

    server: RunningServer
    browser: Any
    directory: Path
    states: dict[str, str] = field(default_factory=dict)

    def context(self, username: str) -> Any:
        if username not in self.states:
            self.states[username] = self._log_in(username)
        return self.browser.new_context(
            storage_state=self.states[username], locale="en-GB", viewport=DESKTOP
        )

    def _log_in(self, username: str) -> str:
        from stopcsam.accounts.demo_data import DEMO_PASSWORD

        context = self.browser.new_context(locale="en-GB", viewport=DESKTOP)
        page = context.new_page()
        page.goto(self.server.url + "/en/staff/login/")
        page.locator("input[name=username]").fill(username)
        page.locator("input[name=password]").fill(DEMO_PASSWORD)
        code = self.server.manage("totp", username).strip()
        page.locator("input[name=otp_token]").fill(code)
        page.locator("main button[type=submit]").click()
        page.wait_for_load_state()
        assert "/staff/login/" not in page.url, page.locator("main").inner_text()
        path = str(self.directory / f"{username}.json")
        context.storage_state(path=path)
        context.close()
        return path


# --- waiting for the other side -----------------------------------------------------------------


# What a reload or a click says when the page's own no-JS refresh navigates at that moment.
NAVIGATION_RACE = ("ERR_ABORTED", "detached", "Not attached to an active page", "interrupted")


def eventually(check: Callable[[], bool], step: Callable[[], Any], seconds: float = 20) -> None:
    """Repeat ``step`` (a reload, a "check for new messages") until ``check`` holds. A step
    that meets the page's own refresh navigating is simply tried again."""
    from playwright.sync_api import Error

    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "did not happen in time"
        try:
            step()
        except Error as fault:
            if not any(sign in str(fault) for sign in NAVIGATION_RACE):
                raise
        time.sleep(0.3)


def screenshot(page: Any, name: str, *, enabled: bool) -> None:
    if enabled:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
