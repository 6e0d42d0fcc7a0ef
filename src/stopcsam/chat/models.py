"""Chat sessions, their messages (encrypted), the therapist's notes and escalations.

A session mirrors one appointment that scheduling owns; chat learns about it only through the
appointment hooks in settings. Message bodies, notes and free text are sealed at rest.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _

from stopcsam.accounts.models import Participant, StaffUser
from stopcsam.core.fields import EncryptedTextField


def new_public_id() -> str:
    return secrets.token_urlsafe(12)


class SessionState(models.TextChoices):
    SCHEDULED = "scheduled", _("Not open yet")
    WAITING = "waiting", _("Waiting to be admitted")
    LIVE = "live", _("In progress")
    ENDED = "ended", _("Ended")
    CANCELLED = "cancelled", _("Cancelled")  # its appointment was: never attended


# A session in one of these states takes nobody in and no message any more.
CLOSED_STATES = (SessionState.ENDED, SessionState.CANCELLED)


class Sender(models.TextChoices):
    PARTICIPANT = "participant", _("You")
    THERAPIST = "therapist", _("Therapist")


class ChatSession(models.Model):
    """One booked chat appointment between a participant and a therapist."""

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id)
    appointment_ref = models.CharField(max_length=64, unique=True)
    participant = models.ForeignKey(
        Participant, on_delete=models.CASCADE, related_name="chat_sessions"
    )
    therapist = models.ForeignKey(StaffUser, on_delete=models.PROTECT, related_name="+")
    language = models.CharField(max_length=5)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    number = models.PositiveSmallIntegerField(default=1)
    of = models.PositiveSmallIntegerField(default=1)
    state = models.CharField(max_length=10, choices=SessionState.choices, default="scheduled")
    joined_at = models.DateTimeField(null=True, blank=True)
    admitted_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.CharField(max_length=12, blank=True)  # therapist | timer | missed
    # The last sequence number handed out; bumped under the row lock, so gapless.
    last_seq = models.PositiveIntegerField(default=0)
    participant_read_seq = models.PositiveIntegerField(default=0)
    therapist_read_seq = models.PositiveIntegerField(default=0)
    feedback = models.PositiveSmallIntegerField(null=True, blank=True)
    read_along = models.BooleanField(default=False)
    # The appointment source has given this appointment at least once: once it no longer
    # knows it, it was cancelled. Sessions it never knew (benchmarks, tests) are left alone.
    source_confirmed = models.BooleanField(default=False)
    shredded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["therapist", "starts_at"])]

    def __str__(self) -> str:
        return f"chat session {self.public_id}"

    @property
    def audit_ref(self) -> str:
        return f"chat_session:{self.pk}"

    def read_by(self, reader: str) -> int | None:
        """How far ``reader`` (participant or therapist) has read; None for anyone else."""
        if reader == Sender.PARTICIPANT:
            return self.participant_read_seq
        return self.therapist_read_seq if reader == Sender.THERAPIST else None

    def read_by_other_side(self, role: str) -> int:
        """How far the other side has read, for ``role``'s page: the therapist for the
        participant, the participant for staff."""
        return self.therapist_read_seq if role == Sender.PARTICIPANT else self.participant_read_seq


class ChatMessage(models.Model):
    """One message, numbered gaplessly within its session; the body is sealed at rest."""

    # No index of its own: both unique constraints below begin with the session, and each
    # index costs a page write per message (bench/chat.py).
    session = models.ForeignKey(
        ChatSession, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    seq = models.PositiveIntegerField()
    sender = models.CharField(max_length=12, choices=Sender.choices)
    client_id = models.CharField(max_length=64)
    # Bound to its row: a body moved to another session, or to the other side, does not open.
    body = EncryptedTextField(
        context="chat.message.body", bound_to=("session_id", "sender", "client_id")
    )
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["session", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="chat_message_seq_unique"),
            models.UniqueConstraint(
                fields=["session", "sender", "client_id"], name="chat_message_client_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"message {self.seq} of session {self.session_id}"


def message_body_context(*, session_id: int, sender: str, client_id: str) -> str:
    """The encryption context of a message body, for the writer, which seals bodies without
    model instances, and for a connection opening the ciphertext that a wake-up carries."""
    return _BODY.bound_context(session_id=session_id, sender=sender, client_id=client_id)


# Looked up once: message_body_context runs twice per message on the chat's hot path.
_BODY = ChatMessage._meta.get_field("body")
assert isinstance(_BODY, EncryptedTextField)


class RiskLevel(models.TextChoices):
    NONE = "none", _("No current risk identified")
    LOW = "low", _("Low")
    MODERATE = "moderate", _("Moderate")
    HIGH = "high", _("High: act now")


# A note's sealed parts are bound to its session and its author: moved to another session, or
# credited to another member of staff in the database, they do not open.
NOTE_ROW = ("session_id", "author_id")


class SessionNote(models.Model):
    """The therapist's private notes and risk assessment for one session."""

    session = models.OneToOneField(ChatSession, on_delete=models.CASCADE, related_name="note")
    author = models.ForeignKey(StaffUser, on_delete=models.PROTECT, related_name="+")
    body = EncryptedTextField(context="chat.note.body", bound_to=NOTE_ROW, blank=True)
    # Sealed like the rest of the note: the level is its most sensitive part (a review
    # finding: it was the one part in the clear). Nothing queries by it.
    risk_level = EncryptedTextField(
        context="chat.note.risk_level",
        bound_to=NOTE_ROW,
        pad_to=16,  # sealed, "low" and "moderate" differed in length
        choices=RiskLevel.choices,
        blank=True,
    )
    risk_notes = EncryptedTextField(context="chat.note.risk", bound_to=NOTE_ROW, blank=True)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"note on {self.session_id}"


class Escalation(models.Model):
    """A therapist's request for a supervisor to look at a session."""

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="escalations")
    raised_by = models.ForeignKey(StaffUser, on_delete=models.PROTECT, related_name="+")
    reason = EncryptedTextField(
        context="chat.escalation.reason", bound_to=("session_id", "raised_by_id")
    )
    raised_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at"]

    def __str__(self) -> str:
        return f"escalation on {self.session_id}"


class ErasedEscalation(models.Model):
    """What is left of an open escalation whose session was erased with its participant
    ("stop and erase"), or whose transcript retention deleted: who raised it and when, so
    that the supervisors it reached learn that it went and can follow it up with the
    therapist. Nothing of the participant or the session stays: no reason, no study ID, no
    transcript. Deleted once a supervisor has marked it as handled (the audit log keeps
    that)."""

    class Cause(models.TextChoices):
        ERASURE = "erasure"  # "stop and erase", or the account deleted
        RETENTION = "retention"  # the transcript's retention period ended

    raised_by = models.ForeignKey(StaffUser, on_delete=models.PROTECT, related_name="+")
    raised_at = models.DateTimeField()
    erased_at = models.DateTimeField()
    # The supervisor's page says why it went: "the participant chose to stop and erase" was
    # untrue of one that retention deleted.
    cause = models.CharField(max_length=9, choices=Cause.choices, default=Cause.ERASURE)

    class Meta:
        ordering = ["raised_at"]

    def __str__(self) -> str:
        return f"erased escalation raised by {self.raised_by_id}"
