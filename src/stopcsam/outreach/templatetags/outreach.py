from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()


@register.simple_tag
def screening_url() -> str:
    """The way into screening: the study's screening when it is installed, else sign-up."""
    try:
        return reverse("study:screening_start")
    except NoReverseMatch:
        return reverse("accounts:signup")


@dataclass(frozen=True)
class Block:
    kind: str  # "heading", "paragraph" or "list"
    lines: tuple[str, ...]


@register.filter
def blocks(text: str) -> list[Block]:
    """Plain page text as blocks: "## " starts a heading, "- " a list item, a blank line
    ends a paragraph. Rendered with autoescaping: no markup from the admin reaches a page.

    Line by line, not chunk by chunk: a list right under its introduction ("Call us:" then
    "- ...") and two paragraphs between a line of spaces each became one paragraph."""
    found: list[Block] = []
    paragraph: list[str] = []
    items: list[str] = []

    def close() -> None:
        if paragraph:
            found.append(Block("paragraph", (" ".join(paragraph),)))
        if items:
            found.append(Block("list", tuple(items)))
        paragraph.clear()
        items.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            close()
        elif line.startswith("## "):
            close()
            found.append(Block("heading", (line[3:],)))
        elif line.startswith("- "):
            if paragraph:
                close()
            items.append(line[2:])
        elif items and raw[:1].isspace():
            items[-1] += " " + line  # an indented line continues the item above
        else:
            if items:
                close()
            paragraph.append(line)
    close()
    return found
