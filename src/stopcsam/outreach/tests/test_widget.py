"""The embeddable widget: a framable no-JS page and a script variant; localised, accessible,
no cookies, nothing third-party. Only the frame view is exempt from frame protection."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

import stopcsam.outreach

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


def _language_the_script_asks_for(page_lang: str, data_lang: str | None = None) -> str:
    """Run widget.js in node with a bare page and return the lang it fetches its text in."""
    import json
    import shutil
    import subprocess

    node = shutil.which("node")
    assert node, "node is needed (make test installs it for the JavaScript tests)"
    script = Path(stopcsam.outreach.__file__).parent / "static/outreach/widget.js"
    harness = f"""
    const attrs = {{"data-lang": {json.dumps(data_lang)}, "data-campaign": null}};
    globalThis.document = {{
      currentScript: {{src: "https://help.example.org/static/outreach/widget.js",
                       getAttribute: (name) => attrs[name] ?? null}},
      documentElement: {{lang: {json.dumps(page_lang)}}},
    }};
    globalThis.fetch = (url) => {{
      console.log(new URL(url).searchParams.get("lang"));
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
