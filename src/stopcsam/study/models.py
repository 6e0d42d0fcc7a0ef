"""Study records. A participant's rows all hang off their ``Enrolment``, so "stop and erase"
is one real deletion. Aggregates that CONSORT needs after an erasure (screening outcomes,
allocations, withdrawals) are kept as counts without any link to a person."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from stopcsam.accounts.models import Participant
from stopcsam.core.fields import EncryptedTextField


class ProtocolVersion(models.Model):
    """One version of the study protocol. Exactly one is active at a time."""

    key = models.CharField(_("key"), max_length=64)
    version = models.CharField(_("version"), max_length=32)
    definition = models.JSONField(_("definition"))
    is_active = models.BooleanField(_("active"), default=False)
    # The sealed randomization seed: encrypted at rest, never shown. Its SHA-256 is published
    # (in the audit log and on the admin page) when sealed, so the sequence can be verified.
    sealed_seed = EncryptedTextField(editable=False, bound_to=("key", "version"))
    seed_commitment = models.CharField(
        _("seed commitment (SHA-256)"), max_length=64, editable=False
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="study_protocol_key_version"),
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="study_one_active_protocol",
            ),
        ]
        verbose_name = _("protocol version")
        verbose_name_plural = _("protocol versions")

    def __str__(self) -> str:
        return f"{self.key} {self.version}"


class Enrolment(models.Model):
    """A participant's place in the study, from eligible screening to the end."""

    class Status(models.TextChoices):
        ELIGIBLE = "eligible", _("Eligible")
        CONSENTED = "consented", _("Consented")
        RANDOMIZED = "randomized", _("Randomized")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    participant = models.OneToOneField(
        Participant, on_delete=models.CASCADE, related_name="enrolment"
    )
    protocol = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ELIGIBLE)
    language = models.CharField(max_length=5)
    site = models.CharField(max_length=8)
    stratum = models.CharField(max_length=64)
    # JSON, eligible people only; bound to the participant, as the free text to its response:
    # a value copied to another row does not open.
    screening_answers = EncryptedTextField(bound_to=("participant_id",))
    enrolled_at = models.DateTimeField()
    consented_at = models.DateTimeField(null=True, blank=True)
    arm = models.CharField(max_length=64, blank=True)
    allocation_position = models.PositiveIntegerField(null=True, blank=True)
    randomized_at = models.DateTimeField(null=True, blank=True)
    chat_offered = models.BooleanField(default=False)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    sessions_attended = models.PositiveIntegerField(default=0)
    sessions_missed = models.PositiveIntegerField(default=0)
    sessions_cancelled = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["protocol", "stratum", "allocation_position"],
                name="study_one_participant_per_allocation",
            ),
        ]
        verbose_name = _("enrolment")
        verbose_name_plural = _("enrolments")

    def __str__(self) -> str:
        return f"enrolment {self.pk}"

    @property
    def audit_ref(self) -> str:
        return f"enrolment:{self.pk}"


class ConsentRecord(models.Model):
    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="consents")
    document_version = models.CharField(max_length=32)
    language = models.CharField(max_length=5)
    text_sha256 = models.CharField(max_length=64)
    items = models.JSONField()
    consented_at = models.DateTimeField()

    class Meta:
        ordering = ["consented_at"]

    def __str__(self) -> str:
        return f"consent {self.document_version} ({self.language})"


class Response(models.Model):
    """One instrument at one time point. Saved partially, then completed."""

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="responses")
    time_point = models.CharField(max_length=64)
    instrument = models.CharField(max_length=64)
    instrument_version = models.CharField(max_length=32)
    answers = models.JSONField(default=dict)  # closed answers (numbers and option values)
    free_text = EncryptedTextField(  # JSON of free-text answers, encrypted
        default="{}", bound_to=("enrolment_id", "time_point", "instrument")
    )
    scores = models.JSONField(default=dict)
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "time_point", "instrument"],
                name="study_one_response_per_instrument",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} at {self.time_point}"


class StratumCounter(models.Model):
    """How many allocations a stratum has used. The arm at each position is computed from the
    sealed seed at the moment of assignment, so no upcoming allocation is stored anywhere."""

    protocol = models.ForeignKey(ProtocolVersion, on_delete=models.CASCADE)
    stratum = models.CharField(max_length=64)
    next_position = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["protocol", "stratum"], name="study_stratum_counter"),
        ]

    def __str__(self) -> str:
        return f"{self.stratum}: {self.next_position} used"


class Tally(models.Model):
    """Daily counts with no link to anyone: screening outcomes, allocations, withdrawals."""

    protocol = models.ForeignKey(ProtocolVersion, on_delete=models.CASCADE)
    day = models.DateField()
    event = models.CharField(max_length=32)  # screened, excluded, randomized, withdrawn, erased
    detail = models.CharField(max_length=64, blank=True)  # exclusion reason or arm
    language = models.CharField(max_length=5, blank=True)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["protocol", "day", "event", "detail", "language"], name="study_tally_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.event} {self.detail}: {self.count}"
