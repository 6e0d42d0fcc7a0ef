"""A last net for every log line: no credential in a URL path is written out.

The access log names a secret URL parameter by its name (core/middleware.py); Django's own
``django.request`` lines (every 4xx and 5xx) quote the path as it came. This filter, on the
console handler, rewrites both the same way.
"""

from __future__ import annotations

import logging
import re

# URL paths that carry a credential: a staff invitation's token.
SECRET_PATHS = re.compile(r"(/staff/invite/)[^/\s?#]+")


class RedactSecretPaths(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = SECRET_PATHS.sub(r"\1<token>", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
