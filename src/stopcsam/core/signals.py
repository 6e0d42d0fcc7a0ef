"""Domain signals that let sibling apps cooperate without importing each other (§4).

Apps depend only on ``accounts`` and ``core``. When one app must tell another that something
happened, it sends one of these signals and the other app listens.
"""

from __future__ import annotations

from django.dispatch import Signal

# A participant reached a step of the way into help. Sent with keyword arguments
# ``step`` (one of FUNNEL_STEPS) and ``request`` (the HttpRequest, whose own session may carry
# a campaign code). Receivers count; they never link steps to a person.
funnel_step = Signal()

FUNNEL_STEPS = (
    "warning_shown",
    "help_click",
    "landing_visit",
    "screening_started",
    "eligible",
    "consented",
    "randomized",
)

# A booked chat session ended one way or another. Sent by scheduling with keyword arguments
# ``participant_id`` (int), ``appointment_ref`` (str) and ``outcome`` ("attended", "no_show"
# or "cancelled"). The study counts adherence from it.
session_outcome = Signal()
SESSION_OUTCOMES = ("attended", "no_show", "cancelled")

# A sign-in ended or changed. Sent with keyword arguments ``session_key`` (str; a Django
# session was deleted: a logout, "stop and erase", a new key at login) or ``staff_id`` (int; a
# member of staff's account changed: deactivated, moved to another site, a new password). The
# chat closes the sockets that sign-in no longer allows at once, instead of at their next
# safety poll.
sign_in_changed = Signal()

# A participant's own account is about to be deleted at their request (accounts' "Delete my
# account"), inside the deleting transaction. Sent with ``participant_id`` (int). The study
# counts it as a withdrawal with erasure.
participant_erasing = Signal()

# A participant stopped taking part (the study's "stop", without erasure), inside the
# withdrawing transaction. Sent with ``participant_id`` (int). Scheduling cancels every
# session still to come, so the therapist's time is freed and no reminder follows.
participant_withdrawn = Signal()
