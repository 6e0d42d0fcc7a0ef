"""The page audit itself can fail: a page with known accessibility faults is caught."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.audit import PageAudit

pytestmark = pytest.mark.browser


def test_the_audit_catches_an_inaccessible_page(browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.set_content(
        '<html><body><img src="data:,"><input type="text">'
        '<a href="https://third-party.example/x.png"></a></body></html>'
    )
    audit = PageAudit("http://127.0.0.1", javascript=True)
    audit._axe(page)
    assert any("image-alt" in problem for problem in audit.problems)
    assert any("label" in problem for problem in audit.problems)
    context.close()


def test_the_audit_catches_requests_to_other_sites(browser: Any) -> None:
    context = browser.new_context()
    context.route("https://third-party.example/**", lambda route: route.abort())
    audit = PageAudit("http://127.0.0.1", javascript=True)
    audit.attach(context)
    page = context.new_page()
    page.set_content('<img alt="" src="https://third-party.example/pixel.png">')
    page.wait_for_timeout(200)
    with pytest.raises(AssertionError, match="third-party"):
        audit.assert_clean()
    context.close()


def test_a_page_shown_without_javascript_is_audited_as_shown(browser: Any) -> None:
    """axe cannot run in the no-JavaScript page itself: its HTML is replayed, <noscript>
    content included, and the faults there are caught."""
    context = browser.new_context(java_script_enabled=False)
    page_html = (
        '<html lang="en"><head><title>t</title></head><body><main><h1>Page</h1>'
        '<noscript><input type="text"></noscript><img src="data:,"></main></body></html>'
    )
    context.route(
        "http://audit.test/page",
        lambda route: route.fulfill(body=page_html, content_type="text/html"),
    )
    page = context.new_page()
    page.goto("http://audit.test/page")
    audit = PageAudit("http://audit.test", javascript=False)
    audit.check(page)
    audit.close()
    assert any("image-alt" in problem for problem in audit.problems)
    assert any("label" in problem for problem in audit.problems)  # the <noscript> input
    context.close()
