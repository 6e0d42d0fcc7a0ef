"""Checks every browser test applies to the pages it visits (DESIGN §5, issue 7):

- accessibility: axe-core finds no serious or critical WCAG 2.1 A/AA violation. axe is
  evaluated through the DevTools protocol, so the page's CSP stays on. A page shown without
  JavaScript cannot run axe, so its exact HTML (``<noscript>`` content shown, scripts kept
  out) is replayed at its own URL in a JavaScript-enabled auditor page and checked there;
- budget: a page and everything it loads stays under 60 KB before compression;
- privacy: no request leaves the site's own origin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PAGE_BUDGET_BYTES = 60 * 1024
NOSCRIPT = re.compile(r"<(/?)noscript>", re.IGNORECASE)
REFRESH = re.compile(r"<meta http-equiv=\"refresh\"[^>]*>", re.IGNORECASE)
AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}});
  return result.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""


@dataclass
class PageAudit:
    origin: str
    javascript: bool
    outside: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    pages_checked: int = 0
    auditor: Any = None

    def attach(self, context: Any) -> None:
        context.on("request", self._on_request)
        context.on("response", self._on_response)

    def _on_request(self, request: Any) -> None:
        if not request.url.startswith(self.origin) and not request.url.startswith("data:"):
            self.outside.append(request.url)

    def _on_response(self, response: Any) -> None:
        if response.url.startswith(self.origin):
            try:
                self.sizes[response.url] = len(response.body())
            except Exception:  # redirects and aborted responses have no body
                self.sizes[response.url] = 0

    def check(self, page: Any) -> None:
        """Check the page now shown; call after each navigation the test makes."""
        page.wait_for_load_state("load")
        self.pages_checked += 1
        total = sum(self.sizes.get(url, 0) for url in self._page_resources(page))
        if total > PAGE_BUDGET_BYTES:
            self.problems.append(f"{page.url}: {total} bytes (budget {PAGE_BUDGET_BYTES})")
        if self.javascript:
            self._axe(page)
        else:
            self._axe(self._replayed(page))

    def _replayed(self, page: Any) -> Any:
        """The no-JavaScript page as it was shown, in a page where axe can run."""
        html = REFRESH.sub("", _content(page))  # the auditor must stay on this page
        html = NOSCRIPT.sub(lambda m: f"<{m.group(1)}div>", html)
        url = page.url.split("#", 1)[0]
        if self.auditor is None:
            context = page.context.browser.new_context(java_script_enabled=True)
            context.route("**/*.js", lambda route: route.abort())  # as shown: no script ran
            self.auditor = context.new_page()
        self.auditor.route(url, lambda route: route.fulfill(body=html, content_type="text/html"))
        try:
            self.auditor.goto(url, wait_until="load")
        finally:
            self.auditor.unroute(url)
        return self.auditor

    def _page_resources(self, page: Any) -> list[str]:
        """The document and the static files it names (no style sheet names another file).
        Every static file the browser had loaded before counted too: a page visited after
        the chat carried the chat's script (23 KB), which it never loads."""
        document = page.url.split("#", 1)[0]
        html = _content(page)
        statics = [url for url in self.sizes if "/static/" in url and urlsplit(url).path in html]
        return [document, *statics]

    def _axe(self, page: Any) -> None:
        if not page.evaluate("() => typeof axe !== 'undefined'"):
            page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
        for violation in page.evaluate(AXE_RUN):
            self.problems.append(
                f"{page.url}: axe {violation['impact']} {violation['id']}: "
                f"{violation['help']} at {violation['targets']}"
            )

    def close(self) -> None:
        if self.auditor is not None:
            self.auditor.context.close()
            self.auditor = None

    def assert_clean(self) -> None:
        self.close()
        assert self.outside == [], f"third-party requests: {self.outside}"
        assert self.problems == [], "\n".join(self.problems)
        assert self.pages_checked > 0


def _content(page: Any) -> str:
    """The page's HTML once it has stopped navigating: a click on a page that refreshes
    itself every second (the chat without JavaScript, in the tests) can land while the
    refresh has begun, and Playwright then refuses the content ("the page is navigating";
    CI, under load)."""
    for _attempt in range(20):
        try:
            return str(page.content())
        except Exception as fault:
            if "navigating" not in str(fault):
                raise
            page.wait_for_load_state("load")
    return str(page.content())
