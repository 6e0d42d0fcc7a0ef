"""A last net for every log line: no credential in a URL path is written out, and no id of
a participant's session or appointment, nor of any object in the admin.

The access log writes paths through ``redact_secret_paths`` (core/middleware.py); Django's
own ``django.request`` lines (every 4xx and 5xx) quote the path as it came, and this filter,
on the console handler, rewrites them the same way.

Nor is any exception's text: a traceback ends with it, and it may quote a value (a unique
key's detail, input, a decrypted message). The filter writes each logged exception as its
kind and its frames only (``exception_without_text``).
"""

from __future__ import annotations

import logging
import re
import traceback
from types import TracebackType

# URL paths that carry a credential: a staff invitation's token.
SECRET_PATHS = re.compile(r"(/staff/invite/)[^/\s?#]+")
# URL paths that name a participant's chat session or appointment: pseudonymous, but with the
# time of each line they would link one person's visits together (a review finding).
PERSON_PATHS = re.compile(
    r"(/chat/s/|/chat/console/(?!escalations/)|/transcript/|/sessions/s/|/sessions/course/"
    r"|/sessions/staff/a/|/sessions/notices/)[^/\s?#.]+"
)

# The admin's object pages (/admin/<app>/<model>/<id>/change/, history, delete, and /admin/r/
# for "view on site") name a participant or an enrolment by its id: every model's, all alike
# (a review finding). The app and model stay readable; "add" is no id, nor a static file's
# folder (/static/admin/js/vendor/).
ADMIN_OBJECT_PATHS = re.compile(
    r"(?<!\S)(/admin/[^/\s?#]+/[^/\s?#]+/)(?!add(?:[/\s?#]|$))[^/\s?#]+"
)


def redact_secret_paths(text: str) -> str:
    text = SECRET_PATHS.sub(r"\1<token>", text)
    return ADMIN_OBJECT_PATHS.sub(r"\1<id>", PERSON_PATHS.sub(r"\1<id>", text))


ExcInfo = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]

CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def exception_without_text(exc_info: ExcInfo) -> str:
    """A traceback as Python writes it, with every exception of the chain named by its kind
    and no text (nor notes): the frames (file, line, function, source line) stay."""
    parts: list[str] = []
    fault, seen = exc_info[1], set()
    while fault is not None and id(fault) not in seen:
        seen.add(id(fault))
        parts.insert(0, _one_exception(fault))
        if fault.__cause__ is not None:
            parts.insert(0, CAUSE)
        elif fault.__context__ is not None and not fault.__suppress_context__:
            parts.insert(0, CONTEXT)
        fault = fault.__cause__ or (None if fault.__suppress_context__ else fault.__context__)
    return "".join(parts).rstrip("\n")


def _one_exception(fault: BaseException) -> str:
    kind = type(fault)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    frames = "".join(traceback.format_tb(fault.__traceback__))
    head = "Traceback (most recent call last):\n" if frames else ""
    return f"{head}{frames}{name}\n"


class RedactSecretPaths(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_secret_paths(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info:
            # Always, even when set: another handler may have formatted the text in first.
            record.exc_text = exception_without_text(record.exc_info)
        return True
