"""Participants' pages at 320 CSS pixels wide (a small phone, or a narrow window at 200 %
zoom), without JavaScript as in Tor Browser's "Safest": nothing pushes the page sideways
(WCAG 1.4.10, reflow)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server import RunningServer

pytestmark = pytest.mark.browser

NARROW = {"width": 320, "height": 640}


@pytest.mark.parametrize("language", ["en", "de", "cs", "pt", "es"])
@pytest.mark.parametrize("path", ["", "support/", "login/"])
def test_a_page_fits_a_narrow_screen(
    server: RunningServer, browser: Any, language: str, path: str
) -> None:
    """The support directory's web addresses, one unbroken word each, were wider than the
    screen: every page of it scrolled sideways."""
    context = browser.new_context(java_script_enabled=False, viewport=NARROW, locale=language)
    page = context.new_page()
    page.goto(f"{server.url}/{language}/{path}")
    sideways = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    context.close()
    assert sideways <= 0, f"/{language}/{path} is {sideways} px wider than the screen"
