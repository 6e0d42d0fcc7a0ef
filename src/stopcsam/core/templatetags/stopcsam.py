from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.urls import translate_url
from django.utils.translation import get_language

register = template.Library()


@register.simple_tag(takes_context=True)
def language_links(context: dict[str, Any]) -> list[dict[str, Any]]:
    """The current page in each language, as plain links (no form, no JavaScript)."""
    # A path of two slashes or more reads as a host to translate_url: "//[" was a 500 on the
    # 404 page, and "//elsewhere.example/" was linked as it came, to another site.
    path = "/" + context["request"].path.lstrip("/")
    current = get_language()
    return [
        {
            "code": code,
            "name": name,
            "url": translate_url(path, code),
            "current": code == current,
        }
        for code, name in settings.LANGUAGES
    ]


@register.simple_tag
def quick_exit_url() -> str:
    """Where the quick exit leads, for the pages that stand alone (500, database away): they
    render without the request's context processors, which may be what failed."""
    return str(settings.STOPCSAM_QUICK_EXIT_URL)
