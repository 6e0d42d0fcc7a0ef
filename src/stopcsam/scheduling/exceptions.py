"""Domain errors of scheduling. Views turn each into one friendly, localised message."""

from __future__ import annotations


class SchedulingError(Exception):
    pass


class BookingNotAllowedError(SchedulingError):
    """The study protocol does not (yet) let this participant book."""


class AlreadyHasCourseError(SchedulingError):
    """The participant already has an open course."""


class SlotUnavailableError(SchedulingError):
    """A chosen time is no longer free (taken meanwhile, or outside the rules)."""


class NoCourseFitsError(SchedulingError):
    """No qualified therapist can offer a whole course starting at this time."""


class ProposalInvalidError(SchedulingError):
    """The confirmed plan does not match the rules (wrong length, spacing, therapist)."""


class ChangeTooLateError(SchedulingError):
    """The cut-off for changing this session has passed."""


class NotChangeableError(SchedulingError):
    """The session is not booked any more (held, missed or cancelled)."""


class EarlierCourseError(SchedulingError):
    """The session belongs to a course that ended, and a newer one is open: a participant
    has one open course at a time, so the earlier one is not opened again."""


class HandoverRefusedError(SchedulingError):
    """The colleague cannot take the course (language, qualification or a clash)."""


class InvalidAvailabilityError(SchedulingError):
    """A window or exception that makes no sense (ends before it starts, bad zone)."""
