"""The quick exit without JavaScript: the footer must not promise what only the script does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import OperationalError
from django.test import Client, RequestFactory, override_settings
from django.utils import translation

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


QUICK_EXIT = '<a class="quick-exit" id="quick-exit" href="https://example.org/weather"'


@override_settings(STOPCSAM_QUICK_EXIT_URL="https://example.org/weather")
def test_the_500_page_has_the_quick_exit_without_the_database() -> None:
    """The error pages stand alone (no request context, no database): a frightened
    participant on one could not leave at once, as every other page lets them. A plain
    link, which works without JavaScript. No database here: the test has none."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.views.defaults import server_error

    request = RequestFactory().get("/de/me/")
    request.session = SessionStore()  # a new one: its CSRF token is read without a query
    with translation.override("de"):
        page = server_error(request)
    html = page.content.decode()
    assert page.status_code == 500
    assert QUICK_EXIT in html and "Schnell verlassen</a>" in html
    assert 'rel="noreferrer noopener"' in html
    assert "/quickexit.js" in html  # with JavaScript: Esc twice, and out of the history


@override_settings(STOPCSAM_QUICK_EXIT_URL="https://example.org/weather")
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_database_away_page_has_the_quick_exit(method: str) -> None:
    from stopcsam.core.middleware import database_away

    request = RequestFactory().generic(method, "/es/me/")
    with translation.override("es"):
        page = database_away(request, OperationalError("connection refused"))
    html = page.content.decode()
    assert page.status_code == 503
    assert QUICK_EXIT in html and "Salida rápida</a>" in html
    assert "/quickexit.js" in html
