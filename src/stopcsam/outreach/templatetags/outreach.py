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
    ends a paragraph. Rendered with autoescaping: no markup from the admin reaches a page."""
    found: list[Block] = []
    for chunk in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line.strip() for line in chunk.split("\n") if line.strip()]
        if not lines:
            continue
        if lines[0].startswith("## "):
            found.append(Block("heading", (lines[0][3:],)))
            lines = lines[1:]
        if lines and all(line.startswith("- ") for line in lines):
            found.append(Block("list", tuple(line[2:] for line in lines)))
        elif lines:
            found.append(Block("paragraph", (" ".join(lines),)))
    return found
