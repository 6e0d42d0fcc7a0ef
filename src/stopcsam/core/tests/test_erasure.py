"""An erased or shredded transcript leaves no ciphertext in the SQLite files: not in the
database's free pages, not in the write-ahead log (core/erasure.py). The field key outlives
the rows, so ciphertext left there would still decrypt."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection

from stopcsam.accounts.services import participant_delete
from stopcsam.chat import services as chat
from stopcsam.chat.models import ChatMessage, ChatSession, message_body_context
from stopcsam.core import clock, crypto
from stopcsam.study.services import enrolment_create, protocol_load, withdraw
from stopcsam.study.tests.conftest import SCREEN_OK, demo_definition

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite's own files"),
]
WORRY = "I am worried about my urges"


def stored_ciphertext(participant, therapist) -> tuple[ChatSession, bytes]:  # type: ignore[no-untyped-def]
    start = clock.now()
    session = chat.session_sync(
        appointment={
            "appointment_ref": "erasure-1",
            "participant_id": participant.pk,
            "therapist_id": therapist.pk,
            "starts_at": start,
            "ends_at": start + timedelta(minutes=50),
        }
    )
    chat.session_enter(session=session, role="participant")
    session = chat.session_admit(session=session, therapist=therapist)
    chat.message_send(
        session_id=session.pk, sender="participant", client_id="erase-0001", body=WORRY
    )
    with connection.cursor() as cursor:  # the column as stored, not the model's plaintext
        cursor.execute("SELECT body FROM chat_chatmessage")
        ((token,),) = cursor.fetchall()
    context = message_body_context(
        session_id=session.pk, sender="participant", client_id="erase-0001"
    )
    assert crypto.decrypt(token, context=context) == WORRY
    return session, token.encode()


def database_files() -> bytes:
    name = Path(connection.settings_dict["NAME"])
    return b"".join(path.read_bytes() for path in name.parent.glob(name.name + "*"))


@pytest.mark.parametrize("how", ["retention-shred", "account-deleted", "withdrawn-and-erased"])
def test_nothing_of_an_erased_transcript_is_left_in_the_database_files(how, participant, therapist):
    session, token = stored_ciphertext(participant.participant, therapist.user)
    assert token in database_files()  # the search can find it
    if how == "retention-shred":
        chat.session_shred(session=session, actor="system")
    elif how == "account-deleted":
        participant_delete(participant=participant.participant)
    else:
        version = protocol_load(definition=demo_definition())
        enrolment = enrolment_create(
            participant=participant.participant, version=version, screening_answers=SCREEN_OK
        )
        withdraw(enrolment=enrolment, erase=True)
    assert not ChatMessage.objects.exists()
    assert token[:40] not in database_files()


def test_every_sqlite_connection_zeroes_what_it_deletes(settings):
    """Many builds zero deleted content by default (SQLITE_SECURE_DELETE); the setting does
    not rely on it."""
    assert "PRAGMA secure_delete=ON;" in settings.DATABASES["default"]["OPTIONS"]["init_command"]
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA secure_delete")
        assert cursor.fetchone() == (1,)


def test_a_reader_holding_an_old_snapshot_makes_the_truncation_give_up_soon(
    participant, therapist, caplog: pytest.LogCaptureFixture
) -> None:
    """While the truncating checkpoint waits, every writer waits too (the chat's among them):
    it waits a quarter of a second at most, logs, and leaves the log to a later checkpoint."""
    import sqlite3

    from stopcsam.core.erasure import forget_deleted

    stored_ciphertext(participant.participant, therapist.user)
    reader = sqlite3.connect(connection.settings_dict["NAME"])
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM chat_chatmessage").fetchone()  # holds its snapshot
    try:
        chat.message_send(
            session_id=ChatSession.objects.get().pk,
            sender="participant",
            client_id="erase-0002",
            body=WORRY,
        )
        forget_deleted()  # outside a transaction: at once
    finally:
        reader.rollback()
        reader.close()
    assert "could not be truncated" in caplog.text
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone() == (20_000,)  # the connection's own wait, restored
