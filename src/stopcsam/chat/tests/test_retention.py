from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from stopcsam.accounts.services import participant_create
from stopcsam.chat import services
from stopcsam.chat.models import ChatMessage, ChatSession
from stopcsam.core import clock

pytestmark = pytest.mark.django_db(transaction=True)


def test_old_transcripts_are_shredded_and_recent_ones_kept(
    settings, book, participant, other_participant, therapist
):
    settings.CHAT_RETENTION_DAYS = 30
    old = book(participant.participant, therapist.user, starts_in=timedelta(days=-40))
    ChatSession.objects.filter(pk=old.pk).update(state="live", admitted_at=old.starts_at)
    services.message_send(
        session_id=old.pk, sender="participant", client_id="c-old-0001", body="How was your week?"
    )
    recent = book(other_participant.participant, therapist.user, starts_in=timedelta(days=-1))
    ChatSession.objects.filter(pk=recent.pk).update(state="live", admitted_at=recent.starts_at)
    services.message_send(
        session_id=recent.pk, sender="participant", client_id="c-new-0001", body="Thank you"
    )
    out = StringIO()
    call_command("chat_retention", stdout=out)
    assert "shredded 1" in out.getvalue()
    assert list(ChatMessage.objects.values_list("session_id", flat=True)) == [recent.pk]
    old.refresh_from_db()
    assert old.shredded_at is not None


# --- the clock starts at the later of the last session and the last study time point --------

LAST_TIME_POINTS: dict[int, datetime | None] = {}  # participant id -> close; absent: no study
HOOK = "stopcsam.chat.tests.test_retention.fake_last_time_points"


def fake_last_time_points(*, participant_ids: list[int]) -> dict[int, datetime | None]:
    return {pid: LAST_TIME_POINTS[pid] for pid in participant_ids if pid in LAST_TIME_POINTS}


@pytest.fixture
def study_clock(settings) -> Iterator[dict[int, datetime | None]]:
    settings.CHAT_RETENTION_DAYS = 30
    settings.STOPCSAM_LAST_TIME_POINTS = HOOK
    LAST_TIME_POINTS.clear()
    yield LAST_TIME_POINTS
    LAST_TIME_POINTS.clear()


def _chatted(book, therapist, *, days_ago: int) -> ChatSession:
    participant, _codename = participant_create(language="en")
    session = book(participant, therapist.user, starts_in=timedelta(days=-days_ago))
    ChatSession.objects.filter(pk=session.pk).update(state="live", admitted_at=session.starts_at)
    services.message_send(
        session_id=session.pk, sender="participant", client_id=f"c-{session.pk:08d}", body="Hello"
    )
    return session


def _kept(session: ChatSession) -> bool:
    session.refresh_from_db()
    return session.shredded_at is None and session.messages.exists()


def test_a_recent_study_time_point_keeps_an_old_transcript(study_clock, book, therapist):
    session = _chatted(book, therapist, days_ago=200)
    study_clock[session.participant_id] = clock.now() - timedelta(days=5)
    assert services.sessions_shred_expired() == 0
    assert _kept(session)


def test_a_time_point_not_yet_dated_keeps_everything(study_clock, book, therapist):
    session = _chatted(book, therapist, days_ago=200)
    study_clock[session.participant_id] = None  # not randomized yet: still in the study
    assert services.sessions_shred_expired() == 0
    assert _kept(session)


def test_transcripts_past_both_clocks_are_shredded(study_clock, book, therapist):
    past_both = _chatted(book, therapist, days_ago=60)
    study_clock[past_both.participant_id] = clock.now() - timedelta(days=31)
    recent_chat = _chatted(book, therapist, days_ago=5)
    study_clock[recent_chat.participant_id] = clock.now() - timedelta(days=90)
    assert services.sessions_shred_expired() == 1
    assert not _kept(past_both)
    assert _kept(recent_chat)


def test_without_enrolment_the_last_session_is_the_clock(study_clock, book, therapist):
    old = _chatted(book, therapist, days_ago=40)
    later = book(old.participant, therapist.user, starts_in=timedelta(days=-35))
    recent = _chatted(book, therapist, days_ago=20)
    assert services.sessions_shred_expired() == 2
    assert not _kept(old)
    later.refresh_from_db()
    assert later.shredded_at is not None
    assert _kept(recent)


def test_a_participant_keeps_everything_while_any_session_is_recent(study_clock, book, therapist):
    old = _chatted(book, therapist, days_ago=90)
    book(old.participant, therapist.user, starts_in=timedelta(days=-3))
    assert services.sessions_shred_expired() == 0
    assert _kept(old)


def test_a_dry_run_counts_by_the_same_clock_and_deletes_nothing(study_clock, book, therapist):
    due = _chatted(book, therapist, days_ago=60)
    in_study = _chatted(book, therapist, days_ago=60)
    study_clock[in_study.participant_id] = clock.now() - timedelta(days=2)
    out = StringIO()
    call_command("chat_retention", "--dry-run", stdout=out)
    assert "would shred 1" in out.getvalue()
    assert _kept(due)
    assert _kept(in_study)


def test_choosing_what_to_shred_takes_a_few_queries_whatever_the_number(
    study_clock, book, therapist, django_assert_max_num_queries
):
    for days_ago in (40, 50, 60, 70, 80, 90):
        session = _chatted(book, therapist, days_ago=days_ago)
        study_clock[session.participant_id] = clock.now() - timedelta(days=days_ago)
    with django_assert_max_num_queries(2):  # candidates, then the count (the hook is a fake)
        assert services.sessions_shred_expired(dry_run=True) == 6


def test_retention_never_shreds_a_session_still_in_progress(settings, book, participant, therapist):
    """Found by a review helper with a retention of 0 days (now refused by a system check):
    a late session, admitted just now, was shredded, and what followed never would be."""
    settings.CHAT_RETENTION_DAYS = 0
    settings.STOPCSAM_LAST_TIME_POINTS = None
    session = book(participant.participant, therapist.user, starts_in=timedelta(minutes=-53))
    services.session_enter(session=session, role="participant")
    services.session_admit(session=session, therapist=therapist.user)
    services.message_send(
        session_id=session.pk, sender="participant", client_id="c-late-0001", body="Thank you"
    )
    assert services.sessions_shred_expired() == 0
    services.session_end(session=session, ended_by="therapist", actor="staff:1")
    assert services.sessions_shred_expired() == 1  # once it has ended


def test_notes_and_escalations_are_refused_once_a_session_is_shredded(book, participant, therapist):
    """They would outlive every later retention run. Found by a review helper."""
    from stopcsam.chat.exceptions import SessionShreddedError
    from stopcsam.chat.models import Escalation, SessionNote

    session = book(participant.participant, therapist.user, starts_in=timedelta(days=-40))
    services.session_shred(session=session, actor="system:retention")
    with pytest.raises(SessionShreddedError):
        services.note_save(
            session=session, author=therapist.user, body="A note", risk_level="low", risk_notes=""
        )
    with pytest.raises(SessionShreddedError):
        services.escalation_raise(session=session, raised_by=therapist.user, reason="Review")
    assert not SessionNote.objects.exists() and not Escalation.objects.exists()


@pytest.mark.parametrize("where", ["forget_deleted", "_delete_content"])
@pytest.mark.parametrize("what", ["note", "escalation"])
def test_a_note_or_escalation_written_while_a_shred_commits_is_refused(
    what, where, book, participant, therapist
):
    """Found by a review helper: checked before the transaction, a note saved while the
    shred ran was stored on the shredded session, and no later run deleted it."""
    import threading
    import time
    from unittest import mock

    from django.db import connection

    from stopcsam.chat.exceptions import SessionShreddedError
    from stopcsam.chat.models import Escalation, SessionNote

    session = book(participant.participant, therapist.user, starts_in=timedelta(days=-40))
    inside, release = threading.Event(), threading.Event()
    # Held inside the shred's transaction: after its update (where it once took the row's
    # lock), or after deleting the notes and before the update (on PostgreSQL a note saved
    # there survived while the row was locked only by the update: a review finding).
    real = getattr(services, where)

    def held(*args: object) -> None:
        real(*args)
        inside.set()
        release.wait(10)

    def shred() -> None:
        try:
            services.session_shred(session=session, actor="system:retention")
        finally:
            connection.close()

    outcome: list[str] = []

    def write() -> None:
        try:
            if what == "note":
                services.note_save(
                    session=session,
                    author=therapist.user,
                    body="A note",
                    risk_level="",
                    risk_notes="",
                )
            else:
                services.escalation_raise(
                    session=session, raised_by=therapist.user, reason="Review"
                )
            outcome.append("stored")
        except SessionShreddedError:
            outcome.append("refused")
        finally:
            connection.close()

    with mock.patch.object(services, where, held):
        shredder = threading.Thread(target=shred)
        shredder.start()
        assert inside.wait(10)
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.3)  # the writer now waits for the shred's lock
        release.set()
        shredder.join(10)
        writer.join(10)
    assert outcome == ["refused"]
    assert not SessionNote.objects.exists() and not Escalation.objects.exists()


def test_a_retention_under_a_day_is_refused(settings):
    from stopcsam.chat.checks import check_retention

    settings.CHAT_RETENTION_DAYS = 0
    assert [e.id for e in check_retention()] == ["stopcsam.chat.E002"]
    settings.CHAT_RETENTION_DAYS = 1
    assert check_retention() == []


def test_the_record_of_an_erased_escalation_goes_after_the_retention_time(settings, therapist):
    """Found by a review helper: with no supervisor at all, nobody marks it as handled, and
    it stayed for good."""
    from stopcsam.chat.models import ErasedEscalation

    now = clock.now()
    old, recent = (
        ErasedEscalation.objects.create(
            raised_by=therapist.user, raised_at=when, erased_at=when + timedelta(minutes=5)
        )
        for when in (now - timedelta(days=settings.CHAT_RETENTION_DAYS + 1), now)
    )
    services.sessions_shred_expired(dry_run=True)
    assert ErasedEscalation.objects.count() == 2
    services.sessions_shred_expired()
    assert list(ErasedEscalation.objects.all()) == [recent]
    assert not ErasedEscalation.objects.filter(pk=old.pk).exists()
