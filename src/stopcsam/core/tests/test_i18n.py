from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

import stopcsam

LANGUAGES = [code for code, _ in settings.LANGUAGES]
PACKAGE = Path(stopcsam.__file__).parent


APPS_WITH_STRINGS = sorted(
    path.parent.name
    for path in PACKAGE.glob("*/apps.py")
    if any(
        marker in source.read_text(encoding="utf-8")
        for source in [*path.parent.rglob("*.py"), *path.parent.rglob("*.html")]
        if "tests" not in source.parts
        for marker in ("gettext", "{% translate", "{% blocktranslate")
    )
)


def test_every_app_with_strings_has_its_own_catalogue() -> None:
    assert {"accounts", "core", "outreach"} <= set(APPS_WITH_STRINGS)
    for app in APPS_WITH_STRINGS:
        assert (PACKAGE / app / "locale").is_dir(), f"{app} has strings but no locale/"


@pytest.fixture(scope="module")
def fresh_catalogues(tmp_path_factory: pytest.TempPathFactory) -> dict[str, polib.POFile]:
    """Extract every msgid from a copy of each app, merged into a copy of its catalogue.

    A string added to the code but not translated shows up here as untranslated.
    """
    catalogues = {}
    root = tmp_path_factory.mktemp("i18n")
    here = Path.cwd()
    for app in APPS_WITH_STRINGS:
        copy = root / app
        shutil.copytree(
            PACKAGE / app, copy, ignore=shutil.ignore_patterns("tests", "__pycache__", "*.mo")
        )
        try:
            os.chdir(copy)
            with override_settings(LOCALE_PATHS=[]):
                call_command(
                    "makemessages",
                    locale=LANGUAGES,
                    verbosity=0,
                    ignore_patterns=["tests"],
                    add_location="never",
                    no_obsolete=True,
                )
        finally:
            os.chdir(here)
        for code in LANGUAGES:
            catalogues[f"{app}:{code}"] = polib.pofile(
                str(copy / "locale" / code / "LC_MESSAGES" / "django.po")
            )
    return catalogues


CATALOGUES = [f"{app}:{code}" for app in APPS_WITH_STRINGS for code in LANGUAGES]


@pytest.mark.parametrize("catalogue_name", CATALOGUES)
def test_every_string_is_translated(
    fresh_catalogues: dict[str, polib.POFile], catalogue_name: str
) -> None:
    catalogue = fresh_catalogues[catalogue_name]
    missing = [entry.msgid for entry in catalogue.untranslated_entries()]
    fuzzy = [entry.msgid for entry in catalogue.fuzzy_entries()]
    assert len(catalogue) > 0
    assert missing == [], f"untranslated in {catalogue_name}: {missing[:10]}"
    assert fuzzy == [], f"fuzzy in {catalogue_name}: {fuzzy[:10]}"


@pytest.mark.parametrize("catalogue_name", CATALOGUES)
def test_placeholders_survive_translation(
    fresh_catalogues: dict[str, polib.POFile], catalogue_name: str
) -> None:
    import re

    pattern = re.compile(r"%\(\w+\)s|\{\{ *\w+ *\}\}|%s")
    for entry in fresh_catalogues[catalogue_name].translated_entries():
        assert sorted(pattern.findall(entry.msgid)) == sorted(pattern.findall(entry.msgstr)), (
            entry.msgid
        )


@pytest.mark.parametrize("code", LANGUAGES)
def test_a_string_reads_the_same_in_every_app(
    fresh_catalogues: dict[str, polib.POFile], code: str
) -> None:
    """Django merges the apps' catalogues, and one app's translation of a string wins
    everywhere: the German chat console said "Termin: Sitzung 1 von 4" (a usability finding).
    A string that must read differently in two places takes a context."""
    found: dict[tuple[str | None, str], dict[str, str]] = {}
    for app in APPS_WITH_STRINGS:
        for entry in fresh_catalogues[f"{app}:{code}"].translated_entries():
            found.setdefault((entry.msgctxt, entry.msgid), {})[app] = entry.msgstr
    differing = {key[1]: apps for key, apps in found.items() if len(set(apps.values())) > 1}
    assert differing == {}, differing


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.5", "/de/"),
        ("cs", "/cs/"),
        ("pt-PT", "/pt/"),
        ("es-419,es;q=0.9", "/es/"),
        ("fr-FR,fr;q=0.9", "/en/"),
    ],
)
def test_the_language_comes_from_accept_language(accept: str, expected: str) -> None:
    response = Client().get("/", headers={"accept-language": accept})
    assert response.status_code == 302 and response["Location"] == expected


@pytest.mark.django_db
def test_a_chosen_language_is_remembered_for_the_session() -> None:
    client = Client()
    client.get("/pt/", headers={"accept-language": "de"})
    cookie = client.cookies["lang"]
    assert cookie.value == "pt" and not cookie["max-age"] and cookie["samesite"] == "Strict"
    assert client.get("/", headers={"accept-language": "de"})["Location"] == "/pt/"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/en/", "/de/login/", "/cs/start/", "/es/staff/login/"])
def test_every_page_offers_every_language(path: str) -> None:
    html = Client().get(path).content.decode()
    tail = path.split("/", 2)[2]
    for code in LANGUAGES:
        assert f'href="/{code}/{tail}"' in html


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["de", "cs", "pt", "es"])
def test_pages_are_really_translated(language: str) -> None:
    english = Client().get("/en/").content.decode()
    other = Client().get(f"/{language}/").content.decode()
    assert f'<html lang="{language}">' in other
    assert "Quick exit" in english and "Quick exit" not in other


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["//[/", "//[::1/en/", "//elsewhere.example/", "///x/"])
def test_a_path_that_reads_as_a_host_is_a_404_with_language_links_on_this_site(
    path: str,
) -> None:
    """A path starting with two slashes reads as a host to a URL parser: "//[" was a 500 on
    the 404 page (its language links), and "//elsewhere.example/" was linked as it was, so
    the links of a page of this site led to another one."""
    client = Client()
    client.raise_request_exception = False
    page = client.get("/", PATH_INFO=path)
    assert page.status_code == 404
    html = page.content.decode()
    languages = html.split('<nav class="languages"', 1)[1].split("</nav>", 1)[0]
    links = re.findall(r'href="([^"]*)"', languages)
    assert len(links) == len(settings.LANGUAGES)
    assert all(link.startswith("/") and not link.startswith("//") for link in links)


@pytest.mark.django_db
def test_a_change_of_language_keeps_the_place_on_the_page() -> None:
    """The language links dropped the page's query: the proposed course lost its first time
    ("Please choose a time."), and a participant sent to log in or to create an account on
    the way to enrolling (``next``) came back to their space, not to the study."""
    html = Client().get("/en/login/?next=/en/study/enrol/&week=2").content.decode()
    languages = html.split('<nav class="languages"', 1)[1].split("</nav>", 1)[0]
    assert 'href="/de/login/?next=/de/study/enrol/&amp;week=2"' in languages
    assert 'href="/cs/login/?next=/cs/study/enrol/&amp;week=2"' in languages
    # A next elsewhere is kept as it was: the login's own check refuses it.
    html = Client().get("/en/login/?next=//elsewhere.example/").content.decode()
    assert 'href="/es/login/?next=//elsewhere.example/"' in html
    # An arrival's marks are not: the front door counts an arrival by them.
    html = Client().get("/en/?via=help&c=x").content.decode()
    assert 'href="/de/" hreflang="de"' in html


@pytest.mark.django_db
def test_an_error_page_is_named_in_its_title() -> None:
    """A screen reader starts with the title: the error pages were all "Confidential chat",
    as if the page asked for had opened."""
    client = Client(enforce_csrf_checks=True)
    client.raise_request_exception = False
    assert "<title>Stránka nenalezena</title>" in client.get("/cs/no-such-page/").content.decode()
    expired = client.post("/pt/login/", {"codename": "a b"})
    assert expired.status_code == 403
    assert "<title>Este formulário expirou</title>" in expired.content.decode()
