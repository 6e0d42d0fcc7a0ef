"""Start-up check: refuse to start with term lists that cannot be read or are faulty."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register

from stopcsam.outreach.matching import TermListError
from stopcsam.outreach.terms import load_term_lists, term_list_paths


@register()
def check_term_lists(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        load_term_lists(term_list_paths())
    except TermListError as exc:
        return [
            Error(
                f"The deterrence term lists cannot be used: {exc}",
                hint="Fix the file named, or point STOPCSAM_TERM_LISTS at valid lists.",
                id="outreach.E001",
            )
        ]
    return []
