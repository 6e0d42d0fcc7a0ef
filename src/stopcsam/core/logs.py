"""A last net for every log line: no credential in a URL path is written out, and no id of
a participant's session or appointment, nor of any object in the admin.

The access log writes paths through ``redact_secret_paths`` (core/middleware.py); Django's
own ``django.request`` lines (every 4xx and 5xx) quote the path as it came, and this filter,
on the console handler, rewrites them the same way.
"""

from __future__ import annotations

import logging
import re

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


class RedactSecretPaths(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_secret_paths(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
