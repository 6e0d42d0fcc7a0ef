"""The append-only audit log. Each entry's hash covers the previous entry's hash."""

from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """One audited action. Never updated or deleted: database triggers refuse both.

    ``actor`` and ``subject`` hold pseudonymous references (``staff:12``, ``participant``),
    never a codename, IP address or other identifying detail.
    """

    seq = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField()
    actor = models.CharField(max_length=64)
    action = models.CharField(max_length=64, db_index=True)
    subject = models.CharField(max_length=128, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor}"
