"""The quick exit without JavaScript: the footer must not promise what only the script does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

import stopcsam

LANGUAGES = [code for code, _ in settings.LANGUAGES]


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
def test_without_javascript_the_footer_does_not_offer_the_escape_key(language: str) -> None:
    """Pressing Esc twice is quickexit.js; with JavaScript off (Tor Browser on "Safest") the
    hint stays hidden and a no-script line names the link, which works without it."""
    html = Client().get(f"/{language}/").content.decode()
    footer = html.split('<footer class="bottom">', 1)[1]
    keys = re.search(r'<p id="quick-exit-keys" hidden>([^<]+)</p>', footer)
    assert keys and "Esc" in keys[1]
    noscript = re.search(r"<noscript><p>([^<]+)</p></noscript>", footer)
    assert noscript and "Esc" not in noscript[1]
    english = Client().get("/en/").content.decode()
    if language != "en":
        assert noscript[1] not in english


def test_the_script_shows_the_escape_key_hint() -> None:
    script = Path(stopcsam.__file__).parent / "core" / "static" / "core" / "quickexit.js"
    assert 'getElementById("quick-exit-keys")' in script.read_text(encoding="utf-8")
