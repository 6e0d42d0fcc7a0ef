from __future__ import annotations

import io
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.conf import settings as settings_module
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stopcsam.chat import selectors, services, timing
from stopcsam.chat.exceptions import (
    InvalidMessageError,
    NotAllowedError,
    SessionEndedError,
    SessionNotFoundError,
    SessionNotLiveError,
    SessionNotOpenError,
)
from stopcsam.chat.models import (
    ChatMessage,
    ChatSession,
    Escalation,
    RiskLevel,
    SessionNote,
    SessionState,
)
from stopcsam.chat.tests import fakes
from stopcsam.core import clock, crypto, fields
from stopcsam.core.crypto import TamperedCiphertextError
from stopcsam.core.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

WORRY = "I am worried about my urges"


def send(session: ChatSession, body: str, client_id: str, sender: str = "participant") -> int:
    return services.message_send(
        session_id=session.pk, sender=sender, client_id=client_id, body=body
    ).seq


def test_it_opens_a_few_minutes_before_the_start_and_not_earlier(book, participant, therapist):
    early = book(participant.participant, therapist.user, starts_in=timedelta(minutes=30))
    with pytest.raises(SessionNotOpenError):
        services.session_enter(session=early, role="participant")
    soon = book(participant.participant, therapist.user, starts_in=timedelta(minutes=5))
    entered = services.session_enter(session=soon, role="participant")
    assert entered.state == SessionState.WAITING
    assert [(soon.appointment_ref, "participant")] == fakes.JOINED


def test_the_therapist_admits_only_a_waiting_participant(book, participant, therapist):
    session = book(participant.participant, therapist.user)
    with pytest.raises(SessionNotOpenError):
        services.session_admit(session=session, therapist=therapist.user)
    services.session_enter(session=session, role="participant")
    admitted = services.session_admit(session=session, therapist=therapist.user)
    assert admitted.state == SessionState.LIVE
    assert admitted.admitted_at is not None


def test_another_therapist_cannot_admit(book, participant, therapist, therapist_es):
    session = book(participant.participant, therapist.user)
    services.session_enter(session=session, role="participant")
    with pytest.raises(NotAllowedError):
        services.session_admit(session=session, therapist=therapist_es.user)


def test_sequence_numbers_are_gapless_and_resends_are_idempotent(live):
    assert send(live, WORRY, "client-aaaa-1") == 1
    assert send(live, "How was your week?", "client-bbbb-1", sender="therapist") == 2
    assert send(live, WORRY, "client-aaaa-1") == 1  # a resend: same number, no new row
    assert send(live, "I looked at illegal images again last week", "client-aaaa-2") == 3
    assert list(live.messages.values_list("seq", flat=True)) == [1, 2, 3]
    live.refresh_from_db()
    assert live.last_seq == 3


def test_a_refused_message_leaves_no_gap(live):
    send(live, WORRY, "client-aaaa-1")
    with pytest.raises(InvalidMessageError):
        send(live, "   ", "client-aaaa-2")
    with pytest.raises(InvalidMessageError):
        send(live, "x" * 4001, "client-aaaa-3")
    assert send(live, "Thank you", "client-aaaa-4") == 2


def test_messages_need_a_live_session(book, participant, therapist, live):
    waiting = book(participant.participant, therapist.user)
    with pytest.raises(SessionNotLiveError):
        send(waiting, WORRY, "client-aaaa-1")
    services.session_end(session=live, ended_by="therapist", actor="staff:1")
    with pytest.raises(SessionEndedError):
        send(live, WORRY, "client-aaaa-9")


def test_one_batch_numbers_each_session_in_arrival_order_and_answers_each_request(
    book, participant, therapist, live
):
    waiting = book(participant.participant, therapist.user)  # not live yet
    request = services.SendRequest
    results = services.messages_send(
        requests=[
            request(live.pk, "participant", "client-aaaa-1", WORRY),
            request(waiting.pk, "participant", "client-cccc-1", WORRY),
            request(live.pk, "therapist", "client-bbbb-1", "How was your week?"),
            request(live.pk, "participant", "client-aaaa-1", WORRY),  # a resend, same batch
            request(live.pk, "participant", "client-aaaa-2", "   "),  # refused: empty
            request(waiting.pk, "participant", "client-cccc-1", WORRY),  # its resend
            request(live.pk, "participant", "client-aaaa-3", "Thank you"),
        ]
    )
    outcome = [
        (r.seq, r.created) if isinstance(r, services.StoredMessage) else type(r) for r in results
    ]
    assert outcome == [
        (1, True),
        SessionNotLiveError,
        (2, True),
        (1, False),
        InvalidMessageError,
        SessionNotLiveError,
        (3, True),
    ]
    assert list(live.messages.order_by("seq").values_list("seq", "client_id")) == [
        (1, "client-aaaa-1"),
        (2, "client-bbbb-1"),
        (3, "client-aaaa-3"),
    ]
    assert not waiting.messages.exists()


def batches(top: int, size: int) -> st.SearchStrategy[list[list[tuple[int, str, int]]]]:
    """Batches of (session 0 or 1, sender, a number from 0 to ``top``)."""
    item = st.tuples(
        st.integers(0, 1), st.sampled_from(["participant", "therapist"]), st.integers(0, top)
    )
    return st.lists(st.lists(item, min_size=1, max_size=size), min_size=1, max_size=4)


def two_live_sessions(book, participant, other_participant, therapist):  # type: ignore[no-untyped-def]
    sessions = []
    for persona in (participant, other_participant):
        session = book(persona.participant, therapist.user)
        services.session_enter(session=session, role="participant")
        sessions.append(services.session_admit(session=session, therapist=therapist.user))
    return sessions


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=batches(top=3, size=8))
def test_group_commits_number_like_one_message_at_a_time(
    batches, book, participant, other_participant, therapist
):
    """Whatever the batches, each session's numbers are 1, 2, 3, ... in arrival order, and a
    client id keeps the number it got first."""
    sessions = two_live_sessions(book, participant, other_participant, therapist)
    expected: dict[tuple[int, str, int], int] = {}
    last = [0, 0]
    for batch in batches:
        requests = [
            services.SendRequest(sessions[i].pk, sender, f"client-{sender}-{n}", WORRY)
            for i, sender, n in batch
        ]
        results = services.messages_send(requests=requests)
        for (i, sender, n), result in zip(batch, results, strict=True):
            if (i, sender, n) not in expected:
                last[i] += 1
                expected[(i, sender, n)] = last[i]
            assert isinstance(result, services.StoredMessage)
            assert result.seq == expected[(i, sender, n)]
    for i, session in enumerate(sessions):
        assert list(session.messages.order_by("seq").values_list("seq", flat=True)) == list(
            range(1, last[i] + 1)
        )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=batches(top=5, size=6))
def test_read_markers_move_forward_only_never_past_the_last_message_and_wake_when_moved(
    batches, book, participant, other_participant, therapist
):
    sessions = two_live_sessions(book, participant, other_participant, therapist)
    for n in range(3):  # the first session has 3 messages, the other none
        send(sessions[0], WORRY, f"client-read-{n:04d}")
    read = {(i, sender): 0 for i in (0, 1) for sender in ("participant", "therapist")}
    hub = mock.Mock()
    with mock.patch.object(services, "get_hub", return_value=hub):
        for batch in batches:
            hub.reset_mock()
            services.read_marks(
                marks=[services.ReadMark(sessions[i].pk, sender, n) for i, sender, n in batch]
            )
            woken = []
            for i, sender in dict.fromkeys((i, sender) for i, sender, _ in batch):
                top = max(n for j, s, n in batch if (j, s) == (i, sender))
                if read[(i, sender)] < top <= (3 if i == 0 else 0):
                    read[(i, sender)] = top
                    woken.append((sessions[i].pk, {"t": "read", "sender": sender, "seq": top}))
            published = [e for call in hub.publish_many.call_args_list for e in call.args[0]]
            assert sorted(published, key=repr) == sorted(woken, key=repr)
    for i, session in enumerate(sessions):
        session.refresh_from_db()
        assert session.participant_read_seq == read[(i, "participant")]
        assert session.therapist_read_seq == read[(i, "therapist")]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's one transaction")
def test_both_sides_read_markers_are_one_commit_on_sqlite(live):
    """A commit per side wrote the session rows' pages to the log twice per flush."""
    send(live, WORRY, "client-both-0001")
    send(live, WORRY, "client-both-0002", sender="therapist")
    in_transaction = []

    def watch(execute, sql, params, many, context):
        if sql.lstrip().startswith("WITH marks"):
            in_transaction.append(connection.connection.in_transaction)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        services.read_marks(
            marks=[
                services.ReadMark(live.pk, "participant", 2),
                services.ReadMark(live.pk, "therapist", 1),
            ]
        )
    assert in_transaction == [True, True]
    assert not connection.connection.in_transaction  # committed
    live.refresh_from_db()
    assert (live.participant_read_seq, live.therapist_read_seq) == (2, 1)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's batch statement")
def test_a_batch_on_postgresql_looks_up_rows_by_index_however_many_messages_exist(live):
    """Each batch finds resends and locks sessions by index. It once joined the whole message
    table by hash, so every batch read all messages ever stored: at 2,000 sessions in
    bench/chat.py, 700 rows a message and a quarter of PostgreSQL's and Redis's CPU time."""
    now = clock.now()
    ChatMessage.objects.bulk_create(
        ChatMessage(
            session=live,
            seq=n,
            sender="participant",
            client_id=f"client-old-{n}",
            body=WORRY,
            sent_at=now,
        )
        for n in range(1, 5001)
    )
    ChatSession.objects.filter(pk=live.pk).update(last_seq=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE chat_chatmessage")
    requests = [
        services.SendRequest(live.pk, "participant", f"client-new-{n}", WORRY) for n in range(8)
    ]
    requests.append(
        services.SendRequest(live.pk, "participant", "client-old-4321", WORRY)
    )  # a resend
    with transaction.atomic(), connection.cursor() as cursor:
        query = (
            "SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_xact_user_tables "
            "WHERE relname IN ('chat_chatmessage', 'chat_chatsession')"
        )
        cursor.execute(query)
        before = cursor.fetchone()[0]
        results = services.messages_send(requests=requests)
        cursor.execute(query)
        read = cursor.fetchone()[0] - before
    assert [r.seq for r in results] == [*range(5001, 5009), 4321]  # type: ignore[union-attr]
    assert read < 100
    with connection.cursor() as cursor:  # prepared once, not parsed and planned per batch
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%json_to_recordset%"],
        )
        assert cursor.fetchone()[0] == 1


def test_a_resend_after_the_end_still_gets_its_number(live):
    send(live, WORRY, "client-aaaa-1")
    services.session_end(session=live, ended_by="therapist", actor="staff:1")
    assert send(live, WORRY, "client-aaaa-1") == 1


def test_inside_a_transaction_a_send_is_part_of_it(live):
    class Undo(Exception):
        pass

    with mock.patch("stopcsam.chat.services.get_hub") as hub:
        with pytest.raises(Undo), transaction.atomic():
            assert send(live, WORRY, "client-aaaa-1") == 1
            assert send(live, WORRY, "client-aaaa-1") == 1  # a resend, in the same transaction
            raise Undo
        assert hub.mock_calls == []  # a wake-up only after a commit: none for a rollback
        live.refresh_from_db()
        assert live.last_seq == 0
        assert not ChatMessage.objects.filter(session=live).exists()
        assert send(live, WORRY, "client-aaaa-2") == 1  # no gap
        assert hub.return_value.publish_many.call_count == 1  # committed: woken once


def test_the_raw_database_holds_no_plaintext(live):
    send(live, WORRY, "client-aaaa-1")
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM chat_chatmessage")
        (raw,) = cursor.fetchone()
    assert WORRY not in raw
    assert "urges" not in raw
    assert raw.startswith("v1.")
    assert ChatMessage.objects.get().body == WORRY


def test_a_tampered_ciphertext_is_detected(live):
    send(live, WORRY, "client-aaaa-1")
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM chat_chatmessage")
        (raw,) = cursor.fetchone()
        flipped = raw[:-3] + ("A" if raw[-3] != "A" else "B") + raw[-2:]
        cursor.execute("UPDATE chat_chatmessage SET body = %s", [flipped])
    with pytest.raises(TamperedCiphertextError):
        _ = ChatMessage.objects.get().body


def test_a_message_moved_to_another_session_or_the_other_side_does_not_open(
    live, book, participant, therapist
):
    """Each body is bound to its row: its session, its sender and its client id. Someone
    who can write to the database cannot make the participant's words pass for the
    therapist's, nor copy them into another session."""
    other = book(participant.participant, therapist.user)
    services.session_enter(session=other, role="participant")
    other = services.session_admit(session=other, therapist=therapist.user)
    send(live, WORRY, "client-aaaa-1")
    send(other, "How was your week?", "client-bbbb-1", sender="therapist")
    mine = ChatMessage.objects.get(session=live)
    assert mine.body == WORRY
    with connection.cursor() as cursor:
        cursor.execute("UPDATE chat_chatmessage SET sender = 'therapist' WHERE id = %s", [mine.pk])
    with pytest.raises(TamperedCiphertextError):
        _ = ChatMessage.objects.get(pk=mine.pk).body
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE chat_chatmessage SET sender = 'participant' WHERE id = %s", [mine.pk]
        )
        cursor.execute("SELECT body FROM chat_chatmessage WHERE id = %s", [mine.pk])
        (sealed,) = cursor.fetchone()
        cursor.execute(
            "UPDATE chat_chatmessage SET body = %s WHERE session_id = %s", [sealed, other.pk]
        )
    assert ChatMessage.objects.get(pk=mine.pk).body == WORRY
    with pytest.raises(TamperedCiphertextError):
        _ = ChatMessage.objects.get(session=other).body
    with pytest.raises(TamperedCiphertextError):
        selectors.messages_after(session_id=other.pk, after=0)


def test_notes_and_escalations_moved_to_another_session_do_not_open(
    live, book, participant, therapist
):
    other = book(participant.participant, therapist.user)
    for session in (live, other):
        services.note_save(
            session=session,
            author=therapist.user,
            body=f"Note on {session.pk}",
            risk_level="low",
            risk_notes="Talked about a safety plan",
        )
        services.escalation_raise(
            session=session, raised_by=therapist.user, reason="Please read along"
        )
    with connection.cursor() as cursor:
        for table, column in [
            ("chat_sessionnote", "body"),
            ("chat_sessionnote", "risk_level"),
            ("chat_escalation", "reason"),
        ]:
            query = f"SELECT {column} FROM {table} WHERE session_id = %s"  # noqa: S608 (constants)
            cursor.execute(query, [live.pk])
            (sealed,) = cursor.fetchone()
            query = f"UPDATE {table} SET {column} = %s WHERE session_id = %s"  # noqa: S608
            cursor.execute(query, [sealed, other.pk])
    note = SessionNote.objects.get(session=live)
    assert (note.body, note.risk_level) == (f"Note on {live.pk}", "low")
    moved = SessionNote.objects.get(session=other)
    assert moved.risk_notes == "Talked about a safety plan"  # not moved: still opens
    for read in (lambda: moved.body, lambda: moved.risk_level):
        with pytest.raises(TamperedCiphertextError):
            read()
    assert Escalation.objects.get(session=live).reason == "Please read along"
    with pytest.raises(TamperedCiphertextError):
        _ = Escalation.objects.get(session=other).reason


def test_a_note_credited_to_another_member_of_staff_does_not_open(live, therapist, coordinator):
    services.note_save(
        session=live, author=therapist.user, body="A note", risk_level="high", risk_notes=""
    )
    services.escalation_raise(session=live, raised_by=therapist.user, reason="Please read along")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE chat_sessionnote SET author_id = %s", [coordinator.user.pk])
        cursor.execute("UPDATE chat_escalation SET raised_by_id = %s", [coordinator.user.pk])
    for read in (
        lambda: SessionNote.objects.get().risk_level,
        lambda: SessionNote.objects.get().body,
        lambda: Escalation.objects.get().reason,
    ):
        with pytest.raises(TamperedCiphertextError):
            read()


def test_the_sealed_risk_level_does_not_tell_the_level_by_its_length(live, therapist):
    lengths = set()
    for level in ["", *RiskLevel.values]:
        services.note_save(
            session=live, author=therapist.user, body="", risk_level=level, risk_notes=""
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT risk_level FROM chat_sessionnote")
            (sealed,) = cursor.fetchone()
        lengths.add(len(sealed))
        assert SessionNote.objects.get().risk_level == level
    assert len(lengths) == 1


def test_the_binding_migration_leaves_values_already_bound(live):
    """A process of the new version may store messages before the migration runs: the
    migration leaves them as they are, both ways (a review finding: it stopped)."""
    from types import SimpleNamespace

    binding, apps = _migration("0005_message_note_escalation_bound")
    editor = SimpleNamespace(connection=connection)
    send(live, f"{WORRY} (1)", "client-aaaa-0001")
    binding.unbind(apps, editor)  # stored before the upgrade
    send(live, f"{WORRY} (2)", "client-aaaa-0002")  # by an upgraded process
    binding.bind(apps, editor)
    binding.bind(apps, editor)  # and once more: nothing left to do
    assert [m.body for m in ChatMessage.objects.order_by("seq")] == [f"{WORRY} (1)", f"{WORRY} (2)"]
    binding.unbind(apps, editor)
    binding.unbind(apps, editor)
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM chat_chatmessage ORDER BY seq")
        opened = [crypto.decrypt(row[0], context="chat.message.body") for row in cursor.fetchall()]
    assert opened == [f"{WORRY} (1)", f"{WORRY} (2)"]


def test_a_note_saved_by_an_upgraded_process_during_the_migration_is_kept(live, therapist):
    """reseal_bound writes a row back only if it still holds what it read: a note saved
    meanwhile by a process of the new version was overwritten with the text read before (a
    review finding). Simulated by saving in between, on the same connection."""
    services.note_save(
        session=live, author=therapist.user, body="First note", risk_level="low", risk_notes=""
    )
    from types import SimpleNamespace

    binding, apps = _migration("0005_message_note_escalation_bound")
    editor = SimpleNamespace(connection=connection)
    binding.unbind(apps, editor)  # stored before the upgrade
    original = fields._resealed
    saved = []

    def meanwhile(field, value, tied, *, bind):
        if field.model._meta.model_name == "sessionnote" and not saved:
            saved.append(1)
            services.note_save(
                session=live,
                author=therapist.user,
                body="Second note: I am worried about their urges",
                risk_level="high",
                risk_notes="",
            )
        return original(field, value, tied, bind=bind)

    with mock.patch.object(fields, "_resealed", meanwhile):
        binding.bind(apps, editor)
    note = SessionNote.objects.get()
    assert (note.body, note.risk_level) == ("Second note: I am worried about their urges", "high")


def test_reencrypt_moves_bound_values_to_the_primary_key(live, therapist, settings):
    from django.core.management import call_command

    old = crypto.new_key_spec("old")
    settings.STOPCSAM_ENCRYPTION_KEYS = old
    send(live, WORRY, "client-aaaa-1")
    services.note_save(
        session=live, author=therapist.user, body="A note", risk_level="low", risk_notes=""
    )
    settings.STOPCSAM_ENCRYPTION_KEYS = f"{crypto.new_key_spec('new')},{old}"
    call_command("reencrypt", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM chat_chatmessage")
        sealed = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT body, risk_level FROM chat_sessionnote")
        sealed += list(cursor.fetchone())
    assert {crypto.key_id_of(value) for value in sealed} == {"new"}
    assert ChatMessage.objects.get().body == WORRY
    assert SessionNote.objects.get().risk_level == "low"


def test_a_bound_field_is_not_written_past_its_row(live):
    """A queryset update has no row to bind the value to: refused, never stored unbound."""
    send(live, WORRY, "client-aaaa-1")
    with pytest.raises(TypeError):
        ChatMessage.objects.filter(session=live).update(body="Something else")
    assert ChatMessage.objects.get().body == WORRY


def test_a_staff_transcript_read_writes_exactly_one_audit_row(live, therapist):
    send(live, WORRY, "client-aaaa-1")
    send(live, "How was your week?", "client-bbbb-1", sender="therapist")
    before = AuditEvent.objects.count()
    shown = selectors.transcript_for_staff(user=therapist.user, session=live, via="test")
    assert [m.body for m in shown] == [WORRY, "How was your week?"]
    rows = list(AuditEvent.objects.order_by("seq")[before:])
    assert [r.action for r in rows] == ["chat.transcript_read"]
    assert rows[0].actor == therapist.user.audit_ref
    assert WORRY not in str(rows[0].detail)


def test_nobody_reaches_a_session_that_is_not_theirs(
    live, other_participant, therapist_es, supervisor
):
    with pytest.raises(SessionNotFoundError):
        selectors.session_for_participant(
            participant=other_participant.participant, public_id=live.public_id
        )
    with pytest.raises(SessionNotFoundError):
        selectors.session_for_staff(user=therapist_es.user, public_id=live.public_id)
    with pytest.raises(SessionNotFoundError):  # the site does not allow reading along
        selectors.session_for_staff(user=supervisor.user, public_id=live.public_id)


def test_a_supervisor_reads_along_only_where_the_site_allows_it(
    settings, book, participant, therapist, supervisor
):
    settings.CHAT_READ_ALONG_SITES = ["DE"]
    session = book(participant.participant, therapist.user)
    assert session.read_along
    _found, access = selectors.session_for_staff(user=supervisor.user, public_id=session.public_id)
    assert access == selectors.READ_ALONG


def test_a_session_admitted_late_ends_at_its_booked_end(book, participant, therapist):
    """The slot ends when it was booked to: admitted 14 minutes late, 36 minutes are left,
    not 50 running into the therapist's next session (a review finding). Everybody gone,
    the minute sweep ends it after the grace period."""
    session = book(participant.participant, therapist.user, starts_in=timedelta(minutes=-14))
    services.session_enter(session=session, role="participant")
    session = services.session_admit(session=session, therapist=therapist.user)
    left = timing.remaining_seconds(session, clock.now())
    assert left is not None and 35 * 60 <= left <= 36 * 60
    grace = timedelta(seconds=settings_module.CHAT_GRACE_SECONDS)
    with mock.patch(
        "stopcsam.core.clock.now", return_value=session.ends_at + grace - timedelta(seconds=1)
    ):
        assert services.sessions_expire_due() == 0
    with mock.patch(
        "stopcsam.core.clock.now", return_value=session.ends_at + grace + timedelta(seconds=1)
    ):
        assert services.sessions_expire_due() == 1
    session.refresh_from_db()
    assert session.state == SessionState.ENDED and session.ended_by == "timer"
    on_time = book(participant.participant, therapist.user, starts_in=timedelta(minutes=5))
    with mock.patch(
        "stopcsam.core.clock.now", return_value=on_time.starts_at - timedelta(minutes=3)
    ):
        services.session_enter(session=on_time, role="participant")
        on_time = services.session_admit(session=on_time, therapist=therapist.user)
        assert timing.remaining_seconds(on_time, clock.now()) == 50 * 60  # admitted early: 50


def test_the_end_is_forced_after_the_grace_period_and_counts_as_attended(live, settings):
    forced = timing.forced_end_at(live)
    assert forced is not None
    with mock.patch("stopcsam.core.clock.now", return_value=forced - timedelta(seconds=1)):
        assert not services.session_expire_if_due(session=live)
    with mock.patch("stopcsam.core.clock.now", return_value=forced + timedelta(seconds=1)):
        assert services.session_expire_if_due(session=live)
    live.refresh_from_db()
    assert live.state == SessionState.ENDED
    assert live.ended_by == "timer"
    assert [live.appointment_ref] == fakes.ATTENDED


def test_a_session_never_admitted_is_not_attended(book, participant, therapist):
    session = book(participant.participant, therapist.user)
    services.session_enter(session=session, role="participant")
    services.session_end(session=session, ended_by="therapist", actor="staff:1")
    assert fakes.ATTENDED == []
    assert [session.appointment_ref] == fakes.NOT_HELD  # the participant came: not held


def test_a_booked_session_marked_missed_lets_nobody_in(book, participant, therapist):
    session = book(participant.participant, therapist.user)
    fakes.APPOINTMENTS[session.appointment_ref]["missed"] = True
    session = services.session_as_booked(session=session)
    assert session.state == SessionState.ENDED and session.ended_by == "missed"
    assert services.session_enter(session=session, role="participant").joined_at is None
    assert fakes.JOINED == [] and fakes.NOT_HELD == []


def test_sessions_are_created_from_scheduling_when_a_list_is_opened(participant, therapist):
    start = clock.now() + timedelta(days=1)
    fakes.APPOINTMENTS["apt-1"] = {
        "appointment_ref": "apt-1",
        "participant_id": participant.participant.pk,
        "therapist_id": therapist.user.pk,
        "starts_at": start,
        "ends_at": start + timedelta(minutes=50),
        "number": 2,
        "of": 4,
        "language": "en",
    }
    (session,) = selectors.sessions_of_participant(participant=participant.participant)
    assert (session.number, session.of) == (2, 4)
    fakes.APPOINTMENTS["apt-1"]["starts_at"] = start + timedelta(hours=2)  # rescheduled
    (again,) = selectors.sessions_of_therapist(user=therapist.user)
    assert again.pk == session.pk
    assert again.starts_at == start + timedelta(hours=2)


def test_erasing_the_participant_removes_the_transcript_at_once(live, participant):
    send(live, WORRY, "client-aaaa-1")
    participant.participant.delete()
    assert not ChatMessage.objects.exists()
    assert not ChatSession.objects.exists()


def test_notes_and_escalations_are_encrypted_and_audited(live, therapist, therapist_es):
    services.note_save(
        session=live,
        author=therapist.user,
        body="Discussed coping plan",
        risk_level="low",
        risk_notes="No contact with minors reported",
    )
    services.escalation_raise(session=live, raised_by=therapist.user, reason="Please review")
    with connection.cursor() as cursor:
        cursor.execute("SELECT body, risk_notes, risk_level FROM chat_sessionnote")
        row = cursor.fetchone()
        cursor.execute("SELECT reason FROM chat_escalation")
        (reason,) = cursor.fetchone()
    assert "coping" not in row[0] and "minors" not in row[1] and "review" not in reason
    assert row[2].startswith("v1.") and "low" not in row[2]  # the level too (a review finding)
    assert SessionNote.objects.get(session=live).get_risk_level_display() == "Low"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"chat.note_saved", "chat.escalate"} <= actions
    # The audit log, which outlives the note, holds no clinical content (a review finding).
    assert AuditEvent.objects.get(action="chat.note_saved").detail in ({}, None)
    with pytest.raises(NotAllowedError):
        services.note_save(
            session=live, author=therapist_es.user, body="x", risk_level="", risk_notes=""
        )


def test_an_escalation_handled_twice_at_once_is_audited_once(live, therapist, supervisor):
    """Two supervisors, or one double click, each with the list loaded while it was open:
    the second changed nothing but still wrote a second "handled" row (found by a review
    helper), unlike an erased escalation's, audited only when its record went."""
    escalation = services.escalation_raise(
        session=live, raised_by=therapist.user, reason="Please review"
    )
    stale = Escalation.objects.select_related("session").get(pk=escalation.pk)
    services.escalation_resolve(escalation=escalation, supervisor=supervisor.user)
    services.escalation_resolve(escalation=stale, supervisor=supervisor.user)
    assert AuditEvent.objects.filter(action="chat.escalation_resolved").count() == 1


def _migration(name: str) -> tuple[Any, Any]:
    """A chat migration's module, and the apps of the project state it leaves."""
    import importlib

    from django.db.migrations.loader import MigrationLoader

    state = MigrationLoader(connection).project_state(("chat", name))
    return importlib.import_module(f"stopcsam.chat.migrations.{name}"), state.apps


def test_the_migration_seals_the_risk_levels_stored_in_the_clear_and_back(live, therapist):
    from types import SimpleNamespace

    sealing, _ = _migration("0004_note_risk_level_sealed")
    binding, apps = _migration("0005_message_note_escalation_bound")
    editor = SimpleNamespace(connection=connection)
    services.note_save(
        session=live, author=therapist.user, body="A note", risk_level="", risk_notes=""
    )
    binding.unbind(apps, editor)  # the note as it was sealed before 0005
    with connection.cursor() as cursor:  # the level as the column held it before 0004
        cursor.execute("UPDATE chat_sessionnote SET risk_level = %s", ["high"])
    sealing.seal(None, editor)
    binding.bind(apps, editor)
    assert SessionNote.objects.get().risk_level == "high"
    binding.unbind(apps, editor)
    sealing.unseal(None, editor)
    with connection.cursor() as cursor:
        cursor.execute("SELECT risk_level FROM chat_sessionnote")
        assert cursor.fetchone() == ("high",)


def test_the_migration_binds_sealed_values_to_their_rows_and_back(live, therapist):
    """Values sealed under their column's context alone (before 0005) open after it, bound
    to their rows; and back again."""
    from types import SimpleNamespace

    binding, apps = _migration("0005_message_note_escalation_bound")
    editor = SimpleNamespace(connection=connection)
    for n in range(3):
        send(live, f"{WORRY} ({n})", f"client-aaaa-{n}")
    services.note_save(
        session=live, author=therapist.user, body="A note", risk_level="low", risk_notes="Plan"
    )
    services.escalation_raise(session=live, raised_by=therapist.user, reason="Please read along")

    def sealed() -> list[tuple[str, ...]]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT body FROM chat_chatmessage ORDER BY seq")
            rows = [tuple(r) for r in cursor.fetchall()]
            cursor.execute("SELECT body, risk_level, risk_notes FROM chat_sessionnote")
            rows += [tuple(r) for r in cursor.fetchall()]
            cursor.execute("SELECT reason FROM chat_escalation")
            return rows + [tuple(r) for r in cursor.fetchall()]

    bound = sealed()
    binding.unbind(apps, editor)
    unbound = sealed()
    assert all(a != b for a, b in zip(bound, unbound, strict=True))
    assert crypto.decrypt(unbound[0][0], context="chat.message.body") == f"{WORRY} (0)"
    assert crypto.decrypt(unbound[3][1], context="chat.note.risk_level") == "low"
    with pytest.raises(TamperedCiphertextError):
        _ = ChatMessage.objects.get(seq=1).body
    binding.bind(apps, editor)
    assert [m.body for m in ChatMessage.objects.order_by("seq")] == [
        f"{WORRY} ({n})" for n in range(3)
    ]
    note = SessionNote.objects.get()
    assert (note.body, note.risk_level, note.risk_notes) == ("A note", "low", "Plan")
    assert Escalation.objects.get().reason == "Please read along"


def test_the_pseudonym_is_stable_and_keyed(settings, participant):
    first = selectors.study_id(participant_id=participant.participant.pk)
    assert first == selectors.study_id(participant_id=participant.participant.pk)
    settings.STOPCSAM_LOOKUP_KEY = "another-lookup-key-for-this-test"
    assert selectors.study_id(participant_id=participant.participant.pk) != first  # keyed
    assert selectors.study_id(participant_id=participant.participant.pk + 1) != first
    settings.STOPCSAM_PARTICIPANT_STUDY_ID = "stopcsam.chat.tests.fakes.study_id"
    assert selectors.study_id(participant_id=7) == "S-0007"


def test_the_end_counts_as_attended_from_the_row_not_the_callers_copy(book, participant, therapist):
    session = book(participant.participant, therapist.user)
    services.session_enter(session=session, role="participant")
    stale = ChatSession.objects.get(pk=session.pk)  # a copy taken before the admit
    services.session_admit(session=session, therapist=therapist.user)
    services.session_end(session=stale, ended_by="therapist", actor="staff:1")
    assert [session.appointment_ref] == fakes.ATTENDED
    assert stale.state == SessionState.ENDED


def test_a_session_everybody_left_is_ended_by_the_minute_sweep(
    live: ChatSession,
    book,
    other_participant,
    therapist,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    """Nobody is connected to end it at its forced end: the background worker's minute sweep
    does, and the appointment counts as attended. A session still within its time is left."""
    from stopcsam.scheduling import jobs

    fresh = book(other_participant.participant, therapist.user)
    services.session_enter(session=fresh, role="participant")
    fresh = services.session_admit(session=fresh, therapist=therapist.user)
    overdue = settings.CHAT_SESSION_SECONDS + settings.CHAT_GRACE_SECONDS + 1
    ChatSession.objects.filter(pk=live.pk).update(
        admitted_at=clock.now() - timedelta(seconds=overdue)
    )
    result = jobs.sweep_sessions.call_local()
    assert result["sessions_expire_due"] == 1
    assert result["sessions_shred_expired"] == 0  # retention runs beside it; nothing is due
    live.refresh_from_db()
    fresh.refresh_from_db()
    assert (live.state, live.ended_by) == (SessionState.ENDED, "timer")
    assert fresh.state == SessionState.LIVE
    assert [live.appointment_ref] == fakes.ATTENDED
    assert services.sessions_expire_due() == 0  # idempotent


@pytest.mark.parametrize("arrived", [True, False])
def test_a_session_nobody_admitted_closes_at_its_booked_end_plus_the_grace_period(
    arrived, book, participant, other_participant, therapist, settings
):
    """A waiting room does not stay open, nor a session start, after the appointment: the
    minute sweep closes it (not attended), a late arrival finds it ended, and the therapist
    can no longer admit. A session still within its booked time is left alone."""
    past = book(participant.participant, therapist.user, starts_in=-timedelta(hours=3))
    if arrived:  # on time, and left waiting
        with mock.patch("stopcsam.core.clock.now", return_value=past.starts_at):
            past = services.session_enter(session=past, role="participant")
        assert past.state == SessionState.WAITING
    soon = book(other_participant.participant, therapist.user, starts_in=timedelta(minutes=1))
    assert services.sessions_expire_due() == 1
    past.refresh_from_db()
    assert (past.state, past.ended_by, past.admitted_at) == (SessionState.ENDED, "timer", None)
    assert fakes.ATTENDED == []
    assert services.session_enter(session=past, role="participant").state == SessionState.ENDED
    with pytest.raises(SessionEndedError):
        services.session_admit(session=past, therapist=therapist.user)
    soon.refresh_from_db()
    assert soon.state == SessionState.SCHEDULED
    assert services.sessions_expire_due() == 0


def test_the_waiting_room_closes_exactly_at_the_booked_end_plus_the_grace_period(
    book, participant, therapist, settings
):
    session = book(participant.participant, therapist.user, starts_in=-timedelta(minutes=10))
    session = services.session_enter(session=session, role="participant")
    closes = session.ends_at + timedelta(seconds=settings.CHAT_GRACE_SECONDS)
    with mock.patch("stopcsam.core.clock.now", return_value=closes - timedelta(seconds=1)):
        assert services.session_expire_if_due(session=session) is False
        assert services.session_admit(session=session, therapist=therapist.user).state == "live"
    session = book(participant.participant, therapist.user, starts_in=-timedelta(minutes=5))
    session = services.session_enter(session=session, role="participant")
    closes = session.ends_at + timedelta(seconds=settings.CHAT_GRACE_SECONDS)
    with mock.patch("stopcsam.core.clock.now", return_value=closes):
        assert services.session_expire_if_due(session=session) is True


def test_the_sweep_does_not_close_a_session_moved_to_a_later_day_at_its_old_time(
    book, participant, therapist
):
    """Scheduling moves an appointment in place (the same reference) without telling the
    chat: the sweep reads the appointment before closing an unadmitted session."""
    session = book(participant.participant, therapist.user, starts_in=timedelta(hours=1))
    moved = dict(fakes.APPOINTMENTS[session.appointment_ref])
    moved["starts_at"] += timedelta(days=2)
    moved["ends_at"] += timedelta(days=2)
    fakes.APPOINTMENTS[session.appointment_ref] = moved
    later = clock.now() + timedelta(hours=3)  # past the old end and its grace period
    with mock.patch("stopcsam.core.clock.now", return_value=later):
        assert services.sessions_expire_due() == 0
    session.refresh_from_db()
    assert (session.state, session.starts_at) == (SessionState.SCHEDULED, moved["starts_at"])
    with mock.patch("stopcsam.core.clock.now", return_value=later + timedelta(days=2)):
        assert services.sessions_expire_due() == 1  # past the new end: closed


def test_a_waiting_session_moved_to_a_later_day_cannot_be_admitted_now(
    book, participant, therapist
):
    """Found by a review helper: the console offered "Admit" and the session went live now,
    while the participant was told it was not open yet."""
    session = book(participant.participant, therapist.user)
    services.session_enter(session=session, role="participant")
    moved = fakes.APPOINTMENTS[session.appointment_ref]
    moved["starts_at"] += timedelta(days=7)
    moved["ends_at"] += timedelta(days=7)
    session = services.session_as_booked(session=session)
    assert session.state == SessionState.SCHEDULED and session.joined_at is None
    with pytest.raises(SessionNotOpenError):
        services.session_admit(session=session, therapist=therapist.user)


def test_a_session_handed_over_cannot_be_admitted_or_ended_by_its_first_therapist(
    book, participant, therapist, therapist_es
):
    """Found by a review helper: admit and end checked the therapist on the caller's copy
    (a socket's, read before the hand-over), then changed the row whoever it now belonged
    to: until its socket closed, the first therapist could admit or end the session of the
    new one."""
    stale = book(participant.participant, therapist.user)
    services.session_enter(session=stale, role="participant")
    fakes.APPOINTMENTS[stale.appointment_ref]["therapist_id"] = therapist_es.user.pk
    services.session_as_booked(session=ChatSession.objects.get(pk=stale.pk))
    assert stale.therapist_id == therapist.user.pk  # the socket's copy, as it was
    with pytest.raises(NotAllowedError):
        services.session_admit(session=stale, therapist=therapist.user)
    with pytest.raises(NotAllowedError):
        services.session_end(
            session=stale,
            ended_by="therapist",
            actor=therapist.user.audit_ref,
            therapist=therapist.user,
        )
    session = ChatSession.objects.get(pk=stale.pk)
    assert (session.state, session.therapist_id) == (SessionState.WAITING, therapist_es.user.pk)
    assert not AuditEvent.objects.filter(action__in=["chat.admit", "chat.end"]).exists()
