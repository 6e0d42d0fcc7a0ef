"""Production settings for the scheduling browser test, with the study's hooks unset, so a
fresh participant may book (the study's own tests cover its eligibility rules)."""

from __future__ import annotations

from stopcsam.settings import *  # noqa: F403

STOPCSAM_MAY_BOOK = None
STOPCSAM_COURSE_LENGTH = None
