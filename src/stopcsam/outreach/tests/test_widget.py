"""The embeddable widget: a framable no-JS page and a script variant; localised, accessible,
no cookies, nothing third-party. Only the frame view is exempt from frame protection."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

import stopcsam.outreach
from stopcsam.outreach.models import CAMPAIGN_CODE_PATTERN

pytestmark = pytest.mark.django_db


def test_the_frame_page_is_localised_accessible_and_framable() -> None:
    response = Client().get("/api/v1/widget/frame?lang=es&c=forum-co")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="es">' in html and 'role="region"' in html and "aria-labelledby" in html
    assert 'href="http://testserver/es/go/?c=forum-co"' in html
    assert "X-Frame-Options" not in response
    assert "frame-ancestors *" in response["Content-Security-Policy"]
    assert "script-src 'none'" in response["Content-Security-Policy"]
    assert not response.cookies


def test_a_bad_language_or_campaign_falls_back_quietly() -> None:
    html = Client().get("/api/v1/widget/frame?lang=xx&c=<script>").content.decode()
    assert '<html lang="en">' in html and "?c=" not in html and "<script>" not in html


@pytest.mark.parametrize("path", ["/en/", "/api/v1/widget/message", "/api/v1/openapi.json"])
def test_every_other_response_still_refuses_framing(path: str) -> None:
    response = Client().get(path)
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_the_script_variant_gets_its_text_from_a_public_cookieless_endpoint() -> None:
    response = Client().get("/api/v1/widget/message?lang=cs&c=forum-co")
    body = response.json()
    assert body["lang"] == "cs" and body["help_url"].endswith("/cs/go/?c=forum-co")
    assert response["Access-Control-Allow-Origin"] == "*"
    assert not response.cookies
    assert Client().get("/api/v1/widget/message?lang=fr").status_code == 400
    assert Client().get("/api/v1/widget/message?c=Bad Code").status_code == 400
    assert Client().get("/api/v1/widget/message?c=").status_code == 400


def test_the_script_loads_nothing_from_elsewhere_and_sends_no_credentials() -> None:
    script = (Path(stopcsam.outreach.__file__).parent / "static/outreach/widget.js").read_text()
    assert 'credentials: "omit"' in script and "innerHTML" not in script
    assert script.count("http") == 1  # only in the comment showing the snippet
    response = Client().get("/static/outreach/widget.js")
    assert response.status_code == 200 and not response.cookies


def _language_the_script_asks_for(
    page_lang: str,
    data_lang: str | None = None,
    *,
    data_campaign: str | None = None,
    param: str = "lang",
) -> str:
    """Run widget.js in node with a bare page and return the lang (or another parameter) it
    fetches its text with; "null" when it sends none."""
    import json
    import shutil
    import subprocess

    node = shutil.which("node")
    assert node, "node is needed (make test installs it for the JavaScript tests)"
    script = Path(stopcsam.outreach.__file__).parent / "static/outreach/widget.js"
    harness = f"""
    const attrs = {{"data-lang": {json.dumps(data_lang)},
                   "data-campaign": {json.dumps(data_campaign)}}};
    globalThis.document = {{
      currentScript: {{src: "https://help.example.org/static/outreach/widget.js",
                       getAttribute: (name) => attrs[name] ?? null}},
      documentElement: {{lang: {json.dumps(page_lang)}}},
    }};
    globalThis.fetch = (url) => {{
      console.log(new URL(url).searchParams.get({json.dumps(param)}));
      return new Promise(() => {{}});
    }};
    require({json.dumps(str(script))});
    """
    done = subprocess.run(
        [node, "-e", harness], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("page_lang", "data_lang", "asked"),
    [
        ("fr-FR", None, "en"),
        ("DE-at", None, "de"),
        ("", None, "en"),
        ("de", "xx", "en"),
        ("fr", "cs", "cs"),
        ("pt-PT", None, "pt"),
    ],
)
def test_the_script_asks_for_a_language_the_site_speaks(
    page_lang: str, data_lang: str | None, asked: str
) -> None:
    """It sent the partner page's own language: on a French page (or "DE-at") the text
    endpoint refused it with a 400 and the warning was silently never shown."""
    assert _language_the_script_asks_for(page_lang, data_lang) == asked


@pytest.mark.parametrize(
    ("data_campaign", "sent"),
    [("search-co", "search-co"), ("Search Co", "null"), ("search_co", "null"), ("", "null")],
)
def test_the_script_shows_the_warning_despite_a_malformed_campaign_code(
    data_campaign: str, sent: str
) -> None:
    """A typo in data-campaign made the text endpoint answer 400 and the warning was silently
    never shown; like the frame, the script then asks without a campaign."""
    asked = _language_the_script_asks_for("de", data_campaign=data_campaign, param="c")
    assert asked == sent
    script = (Path(stopcsam.outreach.__file__).parent / "static/outreach/widget.js").read_text()
    assert f"/{CAMPAIGN_CODE_PATTERN}/" in script  # the same rule as the server's


def _where_the_script_puts_the_box(parent: str) -> str:
    """Run widget.js in node with a bare page whose script tag stands in ``parent`` ("head"
    or "body"); return the parents the box was put into."""
    import json
    import shutil
    import subprocess

    node = shutil.which("node")
    assert node, "node is needed (make test installs it for the JavaScript tests)"
    script = Path(stopcsam.outreach.__file__).parent / "static/outreach/widget.js"
    harness = f"""
    const placed = [];
    const element = (tag, watched) => ({{
      tag, style: {{}}, setAttribute() {{}},
      appendChild(child) {{ if (watched) placed.push(tag); }},
      insertBefore(child) {{ if (watched) placed.push(tag); }},
    }});
    const head = element("head", true), body = element("body", true);
    const parent = {json.dumps(parent)} === "head" ? head : body;
    globalThis.document = {{
      currentScript: {{src: "https://help.example.org/static/outreach/widget.js",
                       getAttribute: () => null, parentNode: parent}},
      documentElement: {{lang: "de"}}, head, body,
      createElement: element, getElementById: () => null,
    }};
    const text = {{lang: "de", title: "T", message: "M", button: "B", help_url: "https://h/"}};
    globalThis.fetch = () => Promise.resolve({{ok: true, json: () => text}});
    require({json.dumps(str(script))});
    setTimeout(() => console.log(placed.join(",")), 50);
    """
    done = subprocess.run(
        [node, "-e", harness], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def test_a_script_tag_in_the_head_shows_the_box_in_the_body() -> None:
    """An async script usually stands in <head>: the box was put there, where nothing shows."""
    assert _where_the_script_puts_the_box("head") == "body"
    assert _where_the_script_puts_the_box("body") == "body"
