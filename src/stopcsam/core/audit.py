"""Writing and verifying the audit chain.

``audit_record`` must run inside the transaction of the action it records, so the entry
exists exactly when the action does. Appends are serialised: PostgreSQL takes an advisory
lock for the transaction, SQLite runs IMMEDIATE transactions that already hold the write lock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from stopcsam.core.models import AuditEvent

GENESIS_HASH = "0" * 64
_PG_AUDIT_LOCK = 0x5709_A0D1  # an arbitrary, fixed advisory-lock number for the audit chain


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def entry_hash(
    *,
    prev_hash: str,
    seq: int,
    occurred_at: str,
    actor: str,
    action: str,
    subject: str,
    detail: dict[str, Any],
) -> str:
    body = json.dumps(
        [seq, occurred_at, actor, action, subject, detail],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def audit_record(
    *, actor: str, action: str, subject: str = "", detail: dict[str, Any] | None = None
) -> AuditEvent:
    detail = detail or {}
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PG_AUDIT_LOCK])
        last = AuditEvent.objects.order_by("-seq").only("seq", "entry_hash").first()
        seq = last.seq + 1 if last else 1
        prev = last.entry_hash if last else GENESIS_HASH
        occurred_at = timezone.now().replace(microsecond=0)
        digest = entry_hash(
            prev_hash=prev,
            seq=seq,
            occurred_at=occurred_at.isoformat(),
            actor=actor,
            action=action,
            subject=subject,
            detail=detail,
        )
        return AuditEvent.objects.create(
            seq=seq,
            occurred_at=occurred_at,
            actor=actor,
            action=action,
            subject=subject,
            detail=detail,
            prev_hash=prev,
            entry_hash=digest,
        )


def audit_verify(events: Iterator[AuditEvent] | None = None) -> ChainBreak | None:
    """Walk the chain in order; return the first break, or None when it is whole."""
    expected_prev, expected_seq = GENESIS_HASH, 1
    for event in events if events is not None else AuditEvent.objects.order_by("seq").iterator():
        if event.seq != expected_seq:
            return ChainBreak(event.seq, f"expected entry {expected_seq}, found {event.seq}")
        if event.prev_hash != expected_prev:
            return ChainBreak(event.seq, "does not follow the previous entry")
        recomputed = entry_hash(
            prev_hash=event.prev_hash,
            seq=event.seq,
            occurred_at=event.occurred_at.isoformat(),
            actor=event.actor,
            action=event.action,
            subject=event.subject,
            detail=event.detail,
        )
        if recomputed != event.entry_hash:
            return ChainBreak(event.seq, "its content does not match its hash")
        expected_prev, expected_seq = event.entry_hash, event.seq + 1
    return None
