"""A participant creates an account, logs out, logs back in and switches language, in
Debian's Chromium, once with JavaScript and once without (Tor Browser on "Safest")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.audit import PageAudit
from tests.server import RunningServer

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_account_round_trip(server: RunningServer, browser: Any, javascript: bool) -> None:
    context = browser.new_context(
        java_script_enabled=javascript, locale="en-GB", viewport={"width": 390, "height": 844}
    )
    audit = PageAudit(server.url, javascript)
    audit.attach(context)
    page = context.new_page()
    page.goto(server.url + "/")
    assert page.url == server.url + "/en/"
    audit.check(page)

    # The front door's Start leads into screening; the account itself is made here.
    page.goto(server.url + "/en/start/")
    audit.check(page)
    page.get_by_role("button", name="Create my codename").click()
    audit.check(page)
    codename = page.locator("#codename").inner_text().strip()
    assert len(codename.split()) >= 7
    page.get_by_label("I have written down my codename.").check()
    page.get_by_role("button", name="Continue").click()
    assert "/en/study/" in page.url  # the participant's home (their study page)

    page.get_by_role("button", name="Log out").click()
    assert page.url == server.url + "/en/"
    page.goto(server.url + "/en/me/")
    assert "/en/login/" in page.url  # logged out for real

    audit.check(page)
    page.get_by_label("Your codename").fill("  " + codename.upper() + "  ")
    page.get_by_role("button", name="Log in").click()
    # Back to the page that asked for the login (a usability finding: always the home).
    assert page.url == server.url + "/en/me/"
    page.goto(server.url + "/en/study/")

    page.get_by_role("link", name="Deutsch").click()
    assert page.url == server.url + "/de/study/"
    audit.check(page)
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.get_by_role("link", name="Schnell verlassen").is_visible()
    page.goto(server.url + "/")
    assert page.url == server.url + "/de/"  # the choice is remembered for the session
    audit.assert_clean()
    context.close()


def test_escape_twice_leaves_for_the_neutral_site(server: RunningServer, browser: Any) -> None:
    context = browser.new_context()
    context.route(
        "https://www.wikipedia.org/**",
        lambda route: route.fulfill(body="<title>Wikipedia</title>", content_type="text/html"),
    )
    page = context.new_page()
    page.goto(server.url + "/en/login/")
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.wait_for_url("https://www.wikipedia.org/")
    context.close()


def test_a_wrong_codename_gets_the_generic_message(server: RunningServer, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server.url + "/es/login/")
    page.locator("input[name=codename]").fill("no such words here")
    page.locator("main button[type=submit]").click()
    assert page.locator(".errorlist").count() == 1
    assert page.url == server.url + "/es/login/"
    context.close()
