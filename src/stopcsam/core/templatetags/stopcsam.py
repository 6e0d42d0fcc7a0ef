from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.http import QueryDict
from django.urls import translate_url
from django.utils.translation import get_language

register = template.Library()

# The help hop's marks of an arrival from outside (outreach.views.go): the front door counts
# an arrival by them, so a change of language that kept them counted the visitor twice.
ARRIVAL_MARKERS = ("c", "via")


@register.simple_tag(takes_context=True)
def language_links(context: dict[str, Any]) -> list[dict[str, Any]]:
    """The current page in each language, as plain links (no form, no JavaScript)."""
    # A path of two slashes or more reads as a host to translate_url: "//[" was a 500 on the
    # 404 page, and "//elsewhere.example/" was linked as it came, to another site.
    request = context["request"]
    path = "/" + request.path.lstrip("/")
    current = get_language()
    return [
        {
            "code": code,
            "name": name,
            "url": translate_url(path, code) + _query_in(request.GET, code),
            "current": code == current,
        }
        for code, name in settings.LANGUAGES
    ]


def _query_in(query: QueryDict, code: str) -> str:
    """The page's query kept in the other language: without it a change of language lost
    the place (the proposed course's first time, the page of times, where to go after
    logging in). A ``next`` of this site is that page in the other language, or logging in
    switched the language back."""
    kept = query.copy()
    for marker in ARRIVAL_MARKERS:
        kept.pop(marker, None)
    if not kept:
        return ""
    target = kept.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        kept["next"] = translate_url(target, code)
    return "?" + kept.urlencode(safe="/")


@register.simple_tag
def quick_exit_url() -> str:
    """Where the quick exit leads, for the pages that stand alone (500, database away): they
    render without the request's context processors, which may be what failed."""
    return str(settings.STOPCSAM_QUICK_EXIT_URL)
