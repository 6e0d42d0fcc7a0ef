"""Therapist availability, courses of sessions and their appointments.

Every instant is stored in UTC. Weekly templates are wall-clock times in the therapist's own
time zone, so a weekly 17:00 stays 17:00 local across a DST change.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from stopcsam.accounts.models import Participant, StaffUser


def new_ref() -> str:
    """An opaque, unguessable reference that other apps (chat) use for an appointment."""
    return secrets.token_urlsafe(12)


class TherapistProfile(models.Model):
    """What scheduling needs to know about a therapist, beside the StaffUser itself."""

    staff = models.OneToOneField(
        StaffUser, on_delete=models.CASCADE, related_name="scheduling_profile"
    )
    qualified = models.BooleanField(_("training completed"), default=False)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Berlin")
    max_per_day = models.PositiveSmallIntegerField(_("maximum sessions per day"), default=4)
    max_per_week = models.PositiveSmallIntegerField(_("maximum sessions per week"), default=12)
    max_caseload = models.PositiveSmallIntegerField(_("maximum caseload"), default=10)
    buffer_minutes = models.PositiveSmallIntegerField(_("buffer between sessions"), default=10)
    # Only a digest of the feed token is kept; the URL is shown once when it is made.
    feed_token_digest = models.CharField(max_length=64, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"profile of {self.staff_id}"


class WeeklyAvailability(models.Model):
    """One recurring window, e.g. Tuesday 17:00-20:00 in the therapist's time zone."""

    therapist = models.ForeignKey(StaffUser, on_delete=models.CASCADE, related_name="+")
    weekday = models.PositiveSmallIntegerField()  # Monday = 0, as datetime.weekday()
    start_time = models.TimeField()
    end_time = models.TimeField()

    class Meta:
        ordering = ["weekday", "start_time"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gt=models.F("start_time")), name="sched_window_positive"
            ),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="sched_weekday_range"),
        ]

    def __str__(self) -> str:
        return f"{self.weekday} {self.start_time}-{self.end_time}"


class ExceptionKind(models.TextChoices):
    EXTRA = "extra", _("Extra hours")
    HOLIDAY = "holiday", _("Holiday")
    SICK = "sick", _("Sick day")
    BLOCKED = "blocked", _("Not available")


class AvailabilityException(models.Model):
    """A one-off change: extra hours add time, the other kinds remove it."""

    therapist = models.ForeignKey(StaffUser, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=ExceptionKind.choices)
    start = models.DateTimeField()
    end = models.DateTimeField()

    class Meta:
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="sched_exc_pos")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.start:%Y-%m-%d %H:%M}Z"

    @property
    def adds_time(self) -> bool:
        return self.kind == ExceptionKind.EXTRA


class Course(models.Model):
    """A participant's course of sessions with one therapist (handed over when needed)."""

    ref = models.CharField(max_length=32, unique=True, default=new_ref)
    participant = models.ForeignKey(
        Participant, on_delete=models.CASCADE, related_name="scheduling_courses"
    )
    therapist = models.ForeignKey(StaffUser, on_delete=models.PROTECT, related_name="+")
    language = models.CharField(max_length=5)
    created_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one open course per participant, even under concurrent requests.
            models.UniqueConstraint(
                fields=["participant"], condition=Q(ended_at=None), name="sched_one_open_course"
            )
        ]

    def __str__(self) -> str:
        return f"course {self.pk}"


class Status(models.TextChoices):
    BOOKED = "booked", _("Booked")
    ATTENDED = "attended", _("Attended")
    NO_SHOW = "no_show", _("Missed")
    CANCELLED = "cancelled", _("Cancelled")


class Kind(models.TextChoices):
    REGULAR = "regular", _("Session")
    BOOSTER = "booster", _("Booster session")
    REPLACEMENT = "replacement", _("Replacement session")


class Appointment(models.Model):
    ref = models.CharField(max_length=32, unique=True, default=new_ref)
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="appointments")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    therapist = models.ForeignKey(StaffUser, on_delete=models.PROTECT, related_name="+")
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BOOKED)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.REGULAR)
    participant_joined_at = models.DateTimeField(null=True, blank=True)
    therapist_joined_at = models.DateTimeField(null=True, blank=True)
    outcome_at = models.DateTimeField(null=True, blank=True)
    # A replacement for a missed or cancelled session: one per session at most.
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replacement"
    )

    class Meta:
        ordering = ["start"]
        indexes = [
            models.Index(fields=["therapist", "start"]),
            models.Index(fields=["status", "start"]),
        ]
        constraints = [
            # The database's own backstop against double booking: a therapist never has two
            # live appointments starting at the same instant (services also check overlaps).
            models.UniqueConstraint(
                fields=["therapist", "start"],
                condition=~Q(status="cancelled"),
                name="sched_no_double_booking",
            ),
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="sched_appt_pos"),
        ]

    def __str__(self) -> str:
        return f"appointment {self.pk}"

    @property
    def is_live(self) -> bool:
        return self.status == Status.BOOKED


class ChangeKind(models.TextChoices):
    BOOKED = "booked", _("Booked")
    RESCHEDULED = "rescheduled", _("Rescheduled")
    CANCELLED = "cancelled", _("Cancelled")
    HANDED_OVER = "handed_over", _("Handed over")
    JOINED = "joined", _("Joined")
    ATTENDED = "attended", _("Attended")
    NO_SHOW = "no_show", _("Missed")


BY_ROLE_LABELS = {
    "participant": _("Participant"),
    "therapist": _("Therapist"),
    "supervisor": _("Supervisor"),
    "coordinator": _("Coordinator"),
    "system": _("Automatic"),
}


class AppointmentChange(models.Model):
    """The history of an appointment: every change, who made it (by role) and when."""

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="changes")
    at = models.DateTimeField()
    kind = models.CharField(max_length=12, choices=ChangeKind.choices)
    by_role = models.CharField(max_length=12)  # "participant", "therapist", "system", ...
    old_start = models.DateTimeField(null=True, blank=True)
    new_start = models.DateTimeField(null=True, blank=True)
    old_therapist = models.ForeignKey(
        StaffUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    new_therapist = models.ForeignKey(
        StaffUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M}Z"

    @property
    def by_label(self) -> str:
        return str(BY_ROLE_LABELS.get(self.by_role, self.by_role))


class NoticeKind(models.TextChoices):
    UPCOMING = "upcoming", _("Upcoming session")
    MISSED = "missed", _("Missed session")
    CHANGED = "changed", _("Changed by your therapist")


class ParticipantNotice(models.Model):
    """A reminder shown in the app at the participant's next visit (never sent anywhere)."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="+")
    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=NoticeKind.choices)
    created_at = models.DateTimeField()
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["appointment", "kind"],
                condition=Q(dismissed_at=None),
                name="sched_one_open_notice",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} notice {self.pk}"
