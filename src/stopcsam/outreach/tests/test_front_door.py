"""The front door: pages in five languages, light and self-contained, drafts hidden,
publishing audited, and the way into screening."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client

from stopcsam.conftest import StaffPersona
from stopcsam.core.models import AuditEvent
from stopcsam.outreach.models import Page, PageSlug, PageStatus

pytestmark = pytest.mark.django_db
LANGUAGES = ["en", "de", "cs", "pt", "es"]
PAGES = ["/", *[f"/info/{slug}/" for slug in PageSlug.values], "/support/", "/survey/"]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_light_local_and_script_free(language: str, path: str) -> None:
    response = Client().get(f"/{language}{path}")
    assert response.status_code == 200
    html = response.content.decode()
    assert len(response.content) < 60 * 1024
    assert f'<html lang="{language}">' in html
    assert "<script>" not in html and "<script " not in html.replace(
        '<script src="/static/core/quickexit.js" defer></script>', ""
    )
    assert not re.search(r"\son\w+=|\sstyle=", html)
    for tag in re.findall(r"<(?:script|link|img)[^>]+>", html):
        assert 'src="/' in tag or 'href="/' in tag, tag


def test_the_front_door_explains_the_service_in_each_language() -> None:
    checks = {
        "en": ["four chat sessions of 50 minutes", "free, anonymous and confidential"],
        "de": ["vier Chat-Sitzungen von je 50 Minuten", "kostenlos, anonym und vertraulich"],
    }
    for language, phrases in checks.items():
        html = Client().get(f"/{language}/").content.decode()
        for phrase in phrases:
            assert phrase in html


@pytest.mark.parametrize("language", LANGUAGES)
def test_definitions_faq_and_crisis_lines_are_published(language: str) -> None:
    for slug, needle in [("definitions", "2011/93"), ("crisis", "112"), ("faq", "?")]:
        html = Client().get(f"/{language}/info/{slug}/").content.decode()
        assert needle in html


def test_the_way_into_screening_falls_back_to_sign_up_until_the_study_serves_it() -> None:
    html = Client().get("/en/").content.decode()
    from django.urls import NoReverseMatch, reverse

    try:
        expected = reverse("study:screening_start")
    except NoReverseMatch:
        expected = "/en/start/"
    assert f'class="button" href="{expected}"' in html


def test_a_draft_is_not_shown_to_visitors() -> None:
    Page.objects.filter(slug="faq", language="cs").update(status=PageStatus.DRAFT)
    assert Client().get("/cs/info/faq/").status_code == 404
    assert "/cs/info/faq/" not in Client().get("/cs/").content.decode()


def test_admin_markup_is_shown_as_text_never_as_html() -> None:
    Page.objects.filter(slug="faq", language="en").update(body="<b>bold</b>\n\n- item <i>")
    html = Client().get("/en/info/faq/").content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<li>item &lt;i&gt;</li>" in html


def test_a_coordinator_publishes_a_page_in_the_admin_and_it_is_audited(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    page = Page.objects.get(slug="about", language="es")
    client = staff_client(coordinator)
    form = {
        "slug": "about",
        "language": "es",
        "title": "Nuevo título",
        "summary": "",
        "body": "Texto nuevo.",
        "status": "draft",
    }
    response = client.post(f"/admin/outreach/page/{page.pk}/change/", form)
    assert response.status_code == 302
    assert Client().get("/es/info/about/").status_code == 404
    client.post(f"/admin/outreach/page/{page.pk}/change/", {**form, "status": "published"})
    assert "Nuevo título" in Client().get("/es/info/about/").content.decode()
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("outreach.page_unpublished") == 1
    assert actions.count("outreach.page_published") == 1


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        # A list right under its introduction, with no blank line between.
        ("Call us:\n- Line one\n- Line two", "<p>Call us:</p>\n<ul><li>Line one</li>"),
        # A "blank" line holding spaces, as pasted text often has.
        ("First paragraph.\n   \nSecond paragraph.", "<p>First paragraph.</p>"),
        # A heading after a paragraph line.
        ("Intro.\n## Heading", "<h2>Heading</h2>"),
    ],
)
def test_page_text_is_read_as_a_coordinator_writes_it(body: str, shown: str) -> None:
    """A list under its introduction became one paragraph ("Call us: - Line one - Line
    two"), and so did two paragraphs between a line holding only spaces."""
    Page.objects.filter(slug="faq", language="en").update(body=body)
    html = Client().get("/en/info/faq/").content.decode()
    assert shown in html
