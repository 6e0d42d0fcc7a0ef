"""Checks every browser test applies to the pages it visits (DESIGN §5, issue 7):

- accessibility: axe-core finds no serious or critical WCAG 2.1 A/AA violation (JavaScript
  contexts only; axe is evaluated through the DevTools protocol, so the page's CSP stays on);
- budget: a page and everything it loads stays under 60 KB before compression;
- privacy: no request leaves the site's own origin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PAGE_BUDGET_BYTES = 60 * 1024
AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}});
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

    def _page_resources(self, page: Any) -> list[str]:
        document = page.url.split("#", 1)[0]
        statics = [url for url in self.sizes if "/static/" in url]
        return [document, *statics]

    def _axe(self, page: Any) -> None:
        if not page.evaluate("() => typeof axe !== 'undefined'"):
            page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
        for violation in page.evaluate(AXE_RUN):
            self.problems.append(
                f"{page.url}: axe {violation['impact']} {violation['id']}: "
                f"{violation['help']} at {violation['targets']}"
            )

    def assert_clean(self) -> None:
        assert self.outside == [], f"third-party requests: {self.outside}"
        assert self.problems == [], "\n".join(self.problems)
        assert self.pages_checked > 0
