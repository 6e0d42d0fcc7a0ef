"""From a warning on a partner's page to the landing page and into screening, in Debian's
Chromium, in two languages, with JavaScript on (the script widget) and off (the framed page).
At every step the day's funnel counter for the partner's campaign moves by exactly one.
"""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import stopcsam.study
from tests.server import RunningServer, running_server

pytestmark = pytest.mark.browser

CAMPAIGN = "e2e-partner"
DEMO_PROTOCOL = Path(stopcsam.study.__file__).parent / "protocols" / "demo.yaml"


@pytest.fixture(scope="module")
def outreach_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("outreach")) as server:
        server.manage("apikey", "create", "--partner", "E2E", "--campaign", CAMPAIGN)
        server.screening_open = _open_screening(server)  # type: ignore[attr-defined]
        yield server


def _open_screening(server: RunningServer) -> bool:
    """Load the study's demo protocol, when the study app offers one, so screening is open."""
    if not DEMO_PROTOCOL.exists():
        return False
    try:
        server.manage("study_load_protocol", str(DEMO_PROTOCOL))
    except subprocess.CalledProcessError:
        return False
    return True


@pytest.fixture(scope="module")
def partner(outreach_server: RunningServer) -> Iterator[str]:
    """A partner platform on another site (localhost, not 127.0.0.1), served by a real local
    HTTP server: browsers only let local pages reach a local server like ours."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            _, language, mode = self.path.strip("/").split("/")
            body = _partner_page(outreach_server, language, mode == "js").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def counts(server: RunningServer, language: str) -> dict[str, int]:
    sql = (
        "SELECT step, SUM(count) FROM outreach_funnelcount "
        "WHERE campaign = %s AND language = %s GROUP BY step"
    )
    if server.database_url:
        import psycopg

        with psycopg.connect(server.database_url) as conn:
            return dict(conn.execute(sql, [CAMPAIGN, language]).fetchall())  # type: ignore[arg-type]
    with sqlite3.connect(server.var_dir / "stopcsam.sqlite3") as conn:
        return dict(conn.execute(sql.replace("%s", "?"), [CAMPAIGN, language]).fetchall())


def _partner_page(server: RunningServer, language: str, javascript: bool) -> str:
    """A partner's results page: the script snippet, or the frame for JavaScript-off."""
    if javascript:
        snippet = (
            f'<script src="{server.url}/static/outreach/widget.js" data-lang="{language}" '
            f'data-campaign="{CAMPAIGN}" async></script>'
        )
    else:
        snippet = (
            f'<iframe title="help" src="{server.url}/api/v1/widget/frame?lang={language}'
            f'&c={CAMPAIGN}" width="600" height="260"></iframe>'
        )
    return f"<!doctype html><html><body><h1>Search results</h1>{snippet}</body></html>"


def _moved(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """How much each step moved; steps that did not move are left out."""
    moved = {step: after.get(step, 0) - before.get(step, 0) for step in after | before}
    return {step: n for step, n in moved.items() if n}


BUTTON = {"en": "Get confidential help", "de": "Vertrauliche Hilfe erhalten"}
START = {"en": "Start", "de": "Beginnen"}


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_from_the_widget_into_screening(
    outreach_server: RunningServer, partner: str, browser: Any, language: str, javascript: bool
) -> None:
    server = outreach_server
    context = browser.new_context(java_script_enabled=javascript, locale=language)
    outside: list[str] = []
    context.on(
        "request",
        lambda r: None if r.url.startswith((server.url, partner)) else outside.append(r.url),
    )
    page = context.new_page()
    before = counts(server, language)

    page.goto(f"{partner}/search/{language}/{'js' if javascript else 'no-js'}")
    if javascript:
        button = page.get_by_role("link", name=BUTTON[language])
        button.wait_for()
        assert page.get_by_role("region").get_attribute("lang") == language
        assert context.cookies() == []  # the widget sets none
        page.keyboard.press("Tab")  # keyboard only: the button is the first stop
        assert button.evaluate("element => element === document.activeElement")
        page.keyboard.press("Enter")
    else:
        frame = page.frame_locator("iframe")
        button = frame.get_by_role("link", name=BUTTON[language])
        assert context.cookies() == []
        with context.expect_page() as opened:
            button.click()
        page = opened.value
    page.wait_for_url(f"{server.url}/{language}/?c={CAMPAIGN}")
    assert _moved(before, counts(server, language)) == {"help_click": 1, "landing_visit": 1}

    page.get_by_role("link", name=START[language], exact=True).click()
    if server.screening_open:  # type: ignore[attr-defined]
        assert f"/{language}/study/screening/" in page.url
        step = counts(server, language)
        assert _moved(before, step) == {
            "help_click": 1,
            "landing_visit": 1,
            "screening_started": 1,
        }
        _answer_screening(page, language)
        assert _moved(step, counts(server, language)) == {"eligible": 1}
    else:  # until the study serves screening, the way in is the sign-up
        assert f"/{language}/start/" in page.url
        page.locator("main button[type=submit]").click()
        assert page.locator("#codename").inner_text().strip()
        assert _moved(before, counts(server, language)) == {"help_click": 1, "landing_visit": 1}
    assert outside == []
    context.close()


def _answer_screening(page: Any, language: str) -> None:
    page.locator("input[name=age]").fill("30")
    page.locator("input[name=recent_use][value=yes]").check()
    page.locator(f"input[name=language][value={language}]").check()
    page.locator("input[name=in_treatment][value=no]").check()
    page.locator("main button[type=submit]").click()
    page.wait_for_url(f"**/{language}/study/eligible/")
