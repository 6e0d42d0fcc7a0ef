from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from stopcsam.core.audit import audit_record, audit_verify
from stopcsam.core.migrations import _append_only_sql
from stopcsam.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def _three_events() -> None:
    audit_record(actor="staff:1", action="transcript.read", subject="session:4")
    audit_record(actor="participant", action="participant.created", detail={"language": "de"})
    audit_record(actor="system", action="job.run")


def test_entries_form_an_unbroken_chain() -> None:
    _three_events()
    events = list(AuditEvent.objects.all())
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[1].prev_hash == events[0].entry_hash
    assert audit_verify() is None


def test_verification_finds_an_edited_entry() -> None:
    _three_events()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE core_auditevent SET actor = 'staff:99' WHERE seq = 2")
    broken = audit_verify()
    assert broken is not None and broken.seq == 2


def test_verification_finds_a_removed_entry() -> None:
    _three_events()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_auditevent WHERE seq = 2")
    broken = audit_verify()
    assert broken is not None and broken.seq == 3


def test_the_command_exits_non_zero_on_a_broken_chain() -> None:
    _three_events()
    call_command("verify_audit", stdout=open("/dev/null", "w"))  # noqa: SIM115, PTH123
    with connection.cursor() as cursor:
        cursor.execute("UPDATE core_auditevent SET action = 'x' WHERE seq = 1")
    with pytest.raises(CommandError, match="entry 1"):
        call_command("verify_audit")


def test_the_database_refuses_updates_and_deletes() -> None:
    # The same statements the migration installs in production, inside this test's transaction.
    with connection.cursor() as cursor:
        for statement in _append_only_sql.forward_statements(connection.vendor):
            cursor.execute(statement)
    _three_events()
    for statement in ("UPDATE core_auditevent SET actor = 'x'", "DELETE FROM core_auditevent"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditEvent.objects.count() == 3
    assert audit_verify() is None
