from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from stopcsam.accounts.models import Role, StaffUser
from stopcsam.chat import selectors, services
from stopcsam.chat.models import ChatMessage, ChatSession, SessionState
from stopcsam.core import clock
from stopcsam.core.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

WORRY = "I am worried about my urges"


def session_url(session) -> str:
    return reverse("chat:session", args=[session.public_id])


def console_url(session) -> str:
    return reverse("chat:console", args=[session.public_id])


def client_id_of(html: str) -> str:
    return re.search(r'name="client_id" value="([^"]+)"', html).group(1)


def assert_no_inline_code(html: str) -> None:
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)


def test_the_waiting_room_refreshes_by_itself_without_javascript(
    book, participant, therapist, participant_client
):
    session = book(participant.participant, therapist.user)
    response = participant_client(participant).get(session_url(session))
    html = response.content.decode()
    assert "Waiting room" in html
    assert '<noscript><meta http-equiv="refresh"' in html
    assert_no_inline_code(html)
    session.refresh_from_db()
    assert session.state == SessionState.WAITING


def test_a_participant_chats_without_javascript_and_a_double_post_is_stored_once(
    live, participant, participant_client
):
    client = participant_client(participant)
    page = client.get(session_url(live)).content.decode()
    assert "Time left:" in page
    form = {"body": WORRY, "client_id": client_id_of(page)}
    first = client.post(session_url(live), form)
    assert first.status_code == 302
    client.post(session_url(live), form)  # the browser sent the form twice
    assert ChatMessage.objects.count() == 1
    assert WORRY in client.get(session_url(live)).content.decode()


@pytest.mark.parametrize("who", ["participant", "therapist"])
def test_a_page_that_refreshes_itself_never_wipes_a_message_being_written(
    who, live, participant, therapist, participant_client, staff_client
):
    """Without JavaScript, a page refreshing every few seconds would wipe a half-written
    message: it shows a link to write instead of the form (the form stays there for
    chat.js, hidden without it). The page to write on does not refresh, and sending goes
    back to the refreshing page. A page that never refreshed stays that way."""
    client = participant_client(participant) if who == "participant" else staff_client(therapist)
    url = session_url(live) if who == "participant" else console_url(live)
    auto = client.get(url + "?auto=1").content.decode()
    assert '<meta http-equiv="refresh"' in auto
    assert f'href="{url}?write=1#compose"' in auto
    assert 'class="compose js-only"' in auto
    write = client.get(url + "?write=1").content.decode()
    assert '<meta http-equiv="refresh"' not in write
    assert 'class="compose"' in write
    assert '<input type="hidden" name="auto" value="1">' in write
    sent = client.post(url, {"body": WORRY, "client_id": client_id_of(write), "auto": "1"})
    assert (sent.status_code, sent["Location"]) == (302, f"{url}?auto=1#latest")
    plain = client.get(url).content.decode()
    assert 'name="auto"' not in plain and "?write=1" not in plain
    again = client.post(url, {"body": WORRY, "client_id": client_id_of(plain)})
    assert again["Location"] == f"{url}#latest"
    assert ChatMessage.objects.count() == 2


def test_posting_through_the_page_is_throttled_as_the_socket_is(
    live, participant, participant_client
):
    """CHAT_SEND_RATE (2 a second, burst 10) over a 10 s window: 30 posts, then a clear error
    that keeps the text, nothing stored, and the next window takes messages again."""
    client = participant_client(participant)
    now = clock.now()
    with mock.patch("stopcsam.core.clock.now", return_value=now):
        for n in range(30):
            sent = client.post(session_url(live), {"body": WORRY, "client_id": f"f-post{n:04d}"})
            assert sent.status_code == 302
        refused = client.post(session_url(live), {"body": WORRY, "client_id": "f-post0030"})
    assert refused.status_code == 429
    html = refused.content.decode()
    assert "You are sending very quickly" in html and WORRY in html  # the text is kept
    assert ChatMessage.objects.count() == 30
    later = now + timedelta(seconds=services.POST_WINDOW_SECONDS)
    with mock.patch("stopcsam.core.clock.now", return_value=later):
        again = client.post(session_url(live), {"body": WORRY, "client_id": "f-post0030"})
    assert again.status_code == 302
    assert ChatMessage.objects.count() == 31


def test_a_posted_message_goes_through_while_the_cache_is_away(
    live, participant, participant_client, settings
):
    """The throttle's count lives in Redis when scaled out: Redis away is no reason to refuse
    a message (the database stores it), as on the socket. Found by a review helper: a 500."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    client = participant_client(participant)
    sent = client.post(session_url(live), {"body": WORRY, "client_id": "f-cacheaway"})
    assert sent.status_code == 302
    assert ChatMessage.objects.count() == 1


def test_the_form_counts_a_line_break_as_one_character_as_the_socket_does(
    live, participant, participant_client, settings
):
    """Browsers send a textarea's line breaks as CRLF and count each as one character."""
    settings.CHAT_MAX_MESSAGE_CHARS = 40
    client = participant_client(participant)
    body = "I am worried\r\n" * 3 + "!"  # 40 characters as written, 43 as sent
    response = client.post(session_url(live), {"body": body, "client_id": "f-abcdefgh"})
    assert response.status_code == 302
    (stored,) = selectors.messages_after(session_id=live.pk, after=0)
    assert stored.body == "I am worried\nI am worried\nI am worried\n!"
    too_long = client.post(session_url(live), {"body": "x" * 41, "client_id": "f-bcdefghi"})
    assert too_long.status_code == 400


def test_an_empty_message_gets_a_clear_error(live, participant, participant_client):
    client = participant_client(participant)
    response = client.post(session_url(live), {"body": "", "client_id": "f-abcdefgh"})
    assert response.status_code == 400
    assert "Write your message first." in response.content.decode()  # not "This field ..."


def test_feedback_without_an_answer_says_what_is_missing_in_the_page_language(
    live, participant, participant_client
):
    """Found by a usability review: Django's generic "This field is required." where every
    other form of the participant's says what to do."""
    services.session_end(session=live, ended_by="therapist", actor="t")
    url = reverse("chat:feedback", args=[live.public_id]).replace("/en/", "/de/", 1)
    page = participant_client(participant).post(url, {}).content.decode()
    assert "Bitte wählen Sie eine Antwort." in page


def test_links_and_markup_are_shown_as_plain_text(live, participant, participant_client):
    services.message_send(
        session_id=live.pk,
        sender="therapist",
        client_id="c-therapist-1",
        body="<b>hello</b> see https://example.org/help <script>alert(1)</script>",
    )
    html = participant_client(participant).get(session_url(live)).content.decode()
    assert "&lt;b&gt;hello&lt;/b&gt;" in html
    assert "https://example.org/help" in html
    assert 'href="https://example.org' not in html
    assert "<script>alert" not in html


def test_a_stranger_gets_not_found(
    live, other_participant, participant_client, therapist_es, staff_client
):
    assert participant_client(other_participant).get(session_url(live)).status_code == 404
    assert staff_client(therapist_es).get(console_url(live)).status_code == 404


def test_the_therapist_admits_chats_and_ends_without_javascript(
    book, participant, therapist, participant_client, staff_client
):
    session = book(participant.participant, therapist.user, number=2, of=4)
    as_participant = participant_client(participant)
    as_participant.get(session_url(session))
    console = staff_client(therapist)
    page = console.get(console_url(session)).content.decode()
    assert "Admit participant" in page
    assert "Session 2 of 4" in page
    assert_no_inline_code(page)
    console.post(console_url(session), {"action": "admit"})
    page = console.get(console_url(session)).content.decode()
    console.post(
        console_url(session), {"body": "How was your week?", "client_id": client_id_of(page)}
    )
    assert "How was your week?" in as_participant.get(session_url(session)).content.decode()
    asked = console.post(console_url(session), {"action": "end"}).content.decode()
    assert "End the session now, for both of you?" in asked  # asked once more
    session.refresh_from_db()
    assert session.state == SessionState.LIVE
    console.post(console_url(session), {"action": "end", "confirm": "1"})
    ended = as_participant.get(session_url(session)).content.decode()
    assert "The session has ended" in ended
    response = as_participant.post(
        reverse("chat:feedback", args=[session.public_id]), {"rating": "4"}, follow=True
    )
    assert response.redirect_chain == [(session_url(session), 302)]  # the thanks: a reload is safe
    assert "Thank you for your feedback." in response.content.decode()
    session.refresh_from_db()
    assert session.feedback == 4


def test_feedback_is_asked_once_and_only_after_a_session_that_took_place(
    live, book, other_participant, participant, therapist, participant_client, settings
):
    client = participant_client(participant)
    services.session_end(session=live, ended_by="therapist", actor="t")
    url = reverse("chat:feedback", args=[live.public_id])
    assert client.post(url, {"rating": "4"}).status_code == 302
    assert client.post(url, {"rating": "1"}).status_code == 302  # the form sent again
    live.refresh_from_db()
    assert live.feedback == 4  # the first answer stands
    missed = book(other_participant.participant, therapist.user, starts_in=timedelta(hours=-3))
    services.sessions_expire_due()  # nobody admitted: closed, not attended
    other = participant_client(other_participant)
    page = other.get(session_url(missed)).content.decode()
    assert "This session did not take place." in page and 'name="rating"' not in page
    refused = other.post(reverse("chat:feedback", args=[missed.public_id]), {"rating": "5"})
    assert refused.status_code == 400
    missed.refresh_from_db()
    assert missed.feedback is None


def test_a_supervisor_reading_along_sees_neither_side_as_you(
    settings, live, supervisor, therapist, staff_client
):
    settings.CHAT_READ_ALONG_SITES = ["DE"]
    live.read_along = True
    live.save(update_fields=["read_along"])
    services.message_send(
        session_id=live.pk, sender="therapist", client_id="c-therapist-1", body="How was your week?"
    )
    reading = staff_client(supervisor).get(console_url(live)).content.decode()
    assert '<span class="who">Therapist</span>' in reading
    assert ">You<" not in reading and " mine" not in reading
    own = staff_client(therapist).get(console_url(live)).content.decode()
    assert '<span class="who">You</span>' in own


def test_a_supervisor_reading_along_who_posts_is_told_it_is_not_allowed(
    settings, live, supervisor, staff_client
):
    """Found by a review helper: a read-only supervisor's post to the console was answered
    200 with the page as if nothing had been asked (and the notes and escalation forms 400
    with no word): what was sent was dropped silently."""
    settings.CHAT_READ_ALONG_SITES = ["DE"]
    live.read_along = True
    live.save(update_fields=["read_along"])
    reader = staff_client(supervisor)
    posts = [
        (console_url(live), {"body": WORRY, "client_id": "f-supervisor-1"}),
        (console_url(live), {"action": "end", "confirm": "1"}),
        (reverse("chat:console_notes", args=[live.public_id]), {"body": "Calm", "seen": ""}),
        (reverse("chat:console_escalate", args=[live.public_id]), {"reason": "Please look"}),
    ]
    for url, form in posts:
        response = reader.post(url, form)
        assert response.status_code == 403, url
        assert "You are not allowed to do this in this session." in response.content.decode()
    live.refresh_from_db()
    assert live.state == SessionState.LIVE and live.last_seq == 0
    assert not hasattr(live, "note") and not live.escalations.exists()


def test_feedback_out_of_range_is_refused(live, participant, participant_client):
    services.session_end(session=live, ended_by="therapist", actor="staff:1")
    response = participant_client(participant).post(
        reverse("chat:feedback", args=[live.public_id]), {"rating": "9"}
    )
    assert response.status_code == 400


def test_each_console_view_is_one_audited_transcript_read(live, therapist, staff_client):
    console = staff_client(therapist)
    before = AuditEvent.objects.filter(action="chat.transcript_read").count()
    console.get(console_url(live))
    assert AuditEvent.objects.filter(action="chat.transcript_read").count() == before + 1


def test_the_console_shows_the_pseudonym_and_saves_notes(live, therapist, staff_client):
    console = staff_client(therapist)
    page = console.get(console_url(live)).content.decode()
    assert re.search(r'id="study-id">P-[0-9A-F]{10}<', page)
    response = console.post(
        reverse("chat:console_notes", args=[live.public_id]),
        {"body": "Discussed coping plan", "risk_level": "low", "risk_notes": ""},
    )
    assert response.status_code == 302
    assert "Discussed coping plan" in console.get(console_url(live)).content.decode()
    bad = console.post(
        reverse("chat:console_notes", args=[live.public_id]), {"risk_level": "extreme"}
    )
    assert bad.status_code == 400


def test_previous_transcripts_are_shown_to_the_therapist_and_audited(
    book, participant, therapist, staff_client
):
    from datetime import timedelta

    earlier = book(participant.participant, therapist.user, starts_in=timedelta(days=-7), number=1)
    current = book(participant.participant, therapist.user, number=2)
    console = staff_client(therapist)
    assert "Previous sessions" in console.get(console_url(current)).content.decode()
    before = AuditEvent.objects.count()
    url = reverse("chat:console_transcript", args=[current.public_id, earlier.public_id])
    assert console.get(url).status_code == 200
    assert list(AuditEvent.objects.order_by("seq").values_list("action", flat=True)[before:]) == [
        "chat.transcript_read"
    ]


def test_the_participant_is_told_when_a_supervisor_may_read_along(
    settings, book, participant, therapist, supervisor, participant_client, staff_client
):
    settings.CHAT_READ_ALONG_SITES = ["DE"]
    session = book(participant.participant, therapist.user)
    services.session_enter(session=session, role="participant")
    services.session_admit(session=session, therapist=therapist.user)
    page = participant_client(participant).get(session_url(session)).content.decode()
    assert "supervisor" in page
    reading = staff_client(supervisor).get(console_url(session)).content.decode()
    assert "reading along" in reading
    assert 'name="action" value="end"' not in reading


def test_the_console_keeps_what_is_typed_in_one_form_when_the_other_is_sent(
    live, therapist, staff_client
):
    """A usability finding: notes typed and not saved were lost when the therapist escalated.
    drafts.js keeps them (tests/js/console_drafts.test.js); without JavaScript the page says
    to save notes first."""
    page = staff_client(therapist).get(console_url(live)).content.decode()
    assert "chat/drafts" in page and page.count("data-keeps-draft") == 2
    assert "Save your notes first" in page


def test_every_page_clears_what_the_console_kept_for_the_next_one(therapist, staff_client):
    """drafts.js keeps a form's notes in the tab's storage for the page that answers the
    other form; that page can be another one (the session erased meanwhile: a 404; the staff
    login), where the clinical notes stayed until the tab was closed. Each page runs it, and
    it clears them (tests/js/console_drafts.test.js)."""
    client = staff_client(therapist)
    pages = [
        client.get(reverse("accounts:staff_home")),
        client.get("/en/chat/console/no-such-session/"),
        Client().get(reverse("accounts:staff_login")),
    ]
    assert [page.status_code for page in pages] == [200, 404, 200]
    for page in pages:
        assert "chat/drafts.js" in page.content.decode(), page.status_code


def test_escalation_is_recorded(live, therapist, staff_client):
    response = staff_client(therapist).post(
        reverse("chat:console_escalate", args=[live.public_id]), {"reason": "Please review"}
    )
    assert response.status_code == 302
    assert live.escalations.count() == 1


def test_the_participant_sees_their_sessions(book, participant, therapist, participant_client):
    book(participant.participant, therapist.user, number=3, of=4)
    page = participant_client(participant).get(reverse("chat:sessions")).content.decode()
    assert "Session 3 of 4" in page


def test_a_supervisor_of_the_site_sees_and_handles_escalations(
    live, therapist, supervisor, therapist_es, staff_client
):
    services.escalation_raise(session=live, raised_by=therapist.user, reason="Please review")
    as_supervisor = staff_client(supervisor)
    page = as_supervisor.get(reverse("chat:escalations")).content.decode()
    assert "Please review" in page
    assert (
        "Please review"
        not in staff_client(therapist_es).get(reverse("chat:escalations")).content.decode()
    )
    assert re.search(r'<h2 id="escalation-\d+">Study ID ', page)  # each one a heading
    escalation = live.escalations.get()
    handled = as_supervisor.post(
        reverse("chat:escalations"), {"escalation": escalation.pk}, follow=True
    )
    assert "The escalation is marked as handled." in handled.content.decode()  # said so
    again = as_supervisor.post(  # a double click: the list as it is, not a 404 page
        reverse("chat:escalations"), {"escalation": escalation.pk}, follow=True
    )
    assert again.status_code == 200
    assert "That escalation is no longer open." in again.content.decode()
    escalation.refresh_from_db()
    assert escalation.resolved_at is not None
    assert AuditEvent.objects.filter(action="chat.escalation_resolved").count() == 1


def test_the_console_shows_the_guide_for_this_session_number(
    settings, tmp_path, book, participant, therapist, staff_client
):
    guide = tmp_path / "guide.json"
    guide.write_text('{"en": {"2": ["Review the week", "Agree on one coping step"]}}')
    settings.CHAT_SESSION_GUIDE_FILE = str(guide)
    session = book(participant.participant, therapist.user, number=2)
    page = staff_client(therapist).get(console_url(session)).content.decode()
    assert "Session guide" in page and "Agree on one coping step" in page


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ('{"en": {"1": ["Welcome"],}}', "is not JSON"),  # a trailing comma
        ('["Welcome"]', "must be an object of languages"),
        ('{"en": {"1": "Welcome"}}', "must be a list of texts"),
        ('{"en": {"first": ["Welcome"]}}', "is not a session number"),
    ],
)
def test_a_faulty_session_guide_is_named_at_start_and_never_takes_the_console_down(
    content, named, settings, tmp_path, live, therapist, staff_client, caplog
):
    """Found by a review helper: a slip in the file was a 500 on every console, and a text
    instead of a list was shown one letter per step."""
    from stopcsam.chat.checks import check_session_guide

    guide = tmp_path / "guide.json"
    guide.write_text(content)
    settings.CHAT_SESSION_GUIDE_FILE = str(guide)
    (error,) = check_session_guide()
    assert error.id == "stopcsam.chat.E003" and named in error.msg
    page = staff_client(therapist).get(console_url(live))
    assert page.status_code == 200 and "Session guide" not in page.content.decode()
    assert named in caplog.text
    guide.write_text('{"en": {"1": ["Welcome the participant"]}}')  # corrected: shown again
    assert (
        "Welcome the participant" in staff_client(therapist).get(console_url(live)).content.decode()
    )
    assert check_session_guide() == []


def test_pages_mark_what_they_show_as_read_but_a_supervisor_reading_along_does_not(
    settings, live, participant, therapist, supervisor, participant_client, staff_client
):
    settings.CHAT_READ_ALONG_SITES = ["DE"]
    live.read_along = True
    live.save(update_fields=["read_along"])
    for n, sender in enumerate(["participant", "therapist"]):
        services.message_send(
            session_id=live.pk, sender=sender, client_id=f"c-views-read-{n}", body=WORRY
        )
    reading = staff_client(supervisor).get(console_url(live)).content.decode()
    assert "reading along" in reading and WORRY in reading
    live.refresh_from_db()
    assert (live.participant_read_seq, live.therapist_read_seq) == (0, 0)
    participant_client(participant).get(session_url(live))
    console = staff_client(therapist).get(console_url(live)).content.decode()
    live.refresh_from_db()
    assert (live.participant_read_seq, live.therapist_read_seq) == (2, 2)
    assert console.count('class="seen"') == 1  # under the therapist's message: read


REFRESH = re.compile(r'<meta http-equiv="refresh" content="([^"]+)"')


def test_the_waiting_rooms_refresh_leads_to_a_live_page_that_refreshes_too(
    book, participant, therapist, participant_client
):
    """Without JavaScript the waiting room says it updates by itself: once admitted, the
    therapist's first message must show up without a click. Found by a review helper."""
    session = book(participant.participant, therapist.user)
    client = participant_client(participant)
    waiting = client.get(session_url(session)).content.decode()
    target = REFRESH.search(waiting).group(1).split(";url=", 1)[1]
    assert target == session_url(session) + "?auto=1&amp;r=1#latest"
    refreshing = client.get(session_url(session) + "?auto=1&r=1").content.decode()
    # Each refresh goes to another address than the page's own: to its own address and a
    # fragment it is only a scroll, and the page stayed in the waiting room for good.
    again = REFRESH.search(refreshing).group(1).split(";url=", 1)[1]
    assert again == session_url(session) + "?auto=1&amp;r=0#latest"
    services.session_admit(session=session, therapist=therapist.user)
    live_page = client.get(session_url(session) + "?auto=1&r=0").content.decode()
    assert "Time left:" in live_page and REFRESH.search(live_page)


def test_ended_pages_stop_refreshing_themselves(
    live, participant, therapist, participant_client, staff_client
):
    """An ended page that refreshed wiped the feedback being chosen, and an ended console
    wrote an audited transcript read every few seconds. Found by a review helper."""
    participant_page = participant_client(participant)
    console = staff_client(therapist)
    assert REFRESH.search(participant_page.get(session_url(live) + "?auto=1").content.decode())
    assert REFRESH.search(console.get(console_url(live) + "?auto=1").content.decode())
    services.session_end(session=live, ended_by="therapist", actor="staff:1")
    ended = participant_page.get(session_url(live) + "?auto=1").content.decode()
    assert 'name="rating"' in ended and not REFRESH.search(ended)
    assert not REFRESH.search(console.get(console_url(live) + "?auto=1").content.decode())


def test_a_refreshing_console_hides_every_form_a_refresh_would_wipe(live, therapist, staff_client):
    """Notes and an escalation's reason are written on the page without the refresh, as a
    message is. Found by a review helper: the refresh wiped them mid-sentence."""
    console = staff_client(therapist)
    page = console.get(console_url(live) + "?auto=1").content.decode()
    assert REFRESH.search(page)
    forms = re.findall(r"<form[^>]*>.*?</form>", page, flags=re.S)
    assert len([f for f in forms if "<textarea" in f]) == 3  # message, notes, escalation
    assert all("js-only" in f.split(">", 1)[0] for f in forms if "<textarea" in f)
    assert 'href="' + console_url(live) + '#notes"' in page
    assert 'href="' + console_url(live) + '#escalate"' in page
    plain = console.get(console_url(live)).content.decode()
    assert not REFRESH.search(plain) and "js-only" not in plain.split('id="notes"', 1)[1]


def test_escalating_answers_with_a_redirect_and_a_double_submit_escalates_once(
    live, therapist, supervisor, staff_client
):
    """A page as the answer to the post: reloading it escalated again. Found by a review
    helper."""
    from stopcsam.chat.models import Escalation

    console = staff_client(therapist)
    url = reverse("chat:console_escalate", args=[live.public_id])
    first = console.post(url, {"reason": "Please review the risk"}, follow=True)
    assert first.redirect_chain[0][1] == 302
    assert "A supervisor has been asked to look at this session." in first.content.decode()
    console.post(url, {"reason": "Please review the risk"})  # the form sent twice
    assert Escalation.objects.filter(session=live).count() == 1
    console.post(url, {"reason": "Something new came up"})  # a new reason is a new one
    assert Escalation.objects.filter(session=live).count() == 2


def test_a_note_on_a_shredded_session_gets_a_clear_error(live, therapist, staff_client):
    services.session_end(session=live, ended_by="therapist", actor="staff:1")
    services.session_shred(session=live, actor="system:retention")
    console = staff_client(therapist)
    url = reverse("chat:console_notes", args=[live.public_id])
    response = console.post(url, {"body": "A late note", "risk_level": "low", "risk_notes": ""})
    assert response.status_code == 400
    assert "have been deleted" in response.content.decode()
    refused = console.post(
        reverse("chat:console_escalate", args=[live.public_id]), {"reason": "Please review"}
    )
    assert refused.status_code == 400 and "have been deleted" in refused.content.decode()


def test_an_earlier_transcript_calls_only_this_therapists_own_messages_yours(
    book, participant, therapist, therapist_es, staff_client
):
    """After a hand-over the earlier sessions were another therapist's: their messages are
    'Therapist', not 'You'. Found by a review helper."""
    earlier = book(participant.participant, therapist_es.user, starts_in=timedelta(days=-7))
    ChatSession.objects.filter(pk=earlier.pk).update(state="live", admitted_at=earlier.starts_at)
    services.message_send(
        session_id=earlier.pk, sender="therapist", client_id="c-es-000001", body="How are you?"
    )
    current = book(participant.participant, therapist.user, number=2)
    url = reverse("chat:console_transcript", args=[current.public_id, earlier.public_id])
    html = staff_client(therapist).get(url).content.decode()
    assert "How are you?" in html
    assert '<span class="who">Therapist</span>' in html
    assert '<span class="who">You</span>' not in html
    own = book(participant.participant, therapist.user, starts_in=timedelta(days=-14))
    ChatSession.objects.filter(pk=own.pk).update(state="live", admitted_at=own.starts_at)
    services.message_send(
        session_id=own.pk, sender="therapist", client_id="c-de-000001", body="Welcome"
    )
    url = reverse("chat:console_transcript", args=[current.public_id, own.public_id])
    assert '<span class="who">You</span>' in staff_client(therapist).get(url).content.decode()


def test_a_cancelled_session_opens_no_earlier_transcript(
    book, participant, therapist, therapist_es, staff_client
):
    """A therapist whose only appointment with the participant was cancelled never met them.
    Found by a review helper: that console still opened every earlier transcript and note."""
    earlier = book(participant.participant, therapist.user, starts_in=timedelta(days=-7))
    ChatSession.objects.filter(pk=earlier.pk).update(state="ended", admitted_at=earlier.starts_at)
    cancelled = book(participant.participant, therapist_es.user, starts_in=timedelta(days=2))
    console = staff_client(therapist_es)
    url = reverse("chat:console_transcript", args=[cancelled.public_id, earlier.public_id])
    assert console.get(url).status_code == 200  # while it is booked
    services.session_cancel(session=cancelled)
    assert "Previous sessions" not in console.get(console_url(cancelled)).content.decode()
    assert console.get(url).status_code == 404


@pytest.mark.parametrize("how", ["missed", "not held"])
def test_a_session_never_held_opens_no_earlier_transcript(
    how, book, participant, therapist, therapist_es, staff_client
):
    """Missed, or ended by the clock with nobody admitted: that therapist never met the
    participant. Found by a review helper: only a cancelled session was closed off."""
    earlier = book(participant.participant, therapist.user, starts_in=timedelta(days=-7))
    ChatSession.objects.filter(pk=earlier.pk).update(state="ended", admitted_at=earlier.starts_at)
    other = book(participant.participant, therapist_es.user, starts_in=timedelta(hours=-2))
    console = staff_client(therapist_es)
    url = reverse("chat:console_transcript", args=[other.public_id, earlier.public_id])
    if how == "missed":
        services.session_end(
            session=other, ended_by="missed", actor="system", states=("scheduled",)
        )
    else:
        ChatSession.objects.filter(pk=other.pk).update(state="waiting")
        other.refresh_from_db()
        assert console.get(url).status_code == 200  # while the participant waits
        services.session_expire_if_due(session=other)
    other.refresh_from_db()
    assert (other.state, other.admitted_at) == ("ended", None)
    assert "Previous sessions" not in console.get(console_url(other)).content.decode()
    assert console.get(url).status_code == 404


def test_a_therapist_whose_role_changed_no_longer_reads_the_sessions(live, therapist, staff_client):
    """Found by a review helper: access went by the booked therapist's id alone."""
    from stopcsam.accounts.models import Role

    services.message_send(
        session_id=live.pk, sender="participant", client_id="c-role-001", body=WORRY
    )
    console = staff_client(therapist)
    assert console.get(console_url(live)).status_code == 200
    therapist.user.role = Role.COORDINATOR
    therapist.user.save(update_fields=["role"])
    assert console.get(console_url(live)).status_code == 404


def test_times_are_in_the_zone_the_participant_booked_in_and_the_staff_sites(
    live, participant, therapist, participant_client, staff_client
):
    """Found by a review helper: booked for 16:00 Madrid, the chat said 15:00 UTC, and
    chat.js showed the browser's time beside the page's UTC."""
    from zoneinfo import ZoneInfo

    from stopcsam.core import zones

    services.message_send(
        session_id=live.pk, sender="participant", client_id="c-time-0001", body=WORRY
    )
    sent_at = live.messages.get().sent_at
    client = participant_client(participant)
    session = client.session
    session[zones.SESSION_KEY] = "America/New_York"  # chosen when booking
    session.save()
    html = client.get(session_url(live)).content.decode()
    assert 'data-tz="America/New_York"' in html
    assert sent_at.astimezone(ZoneInfo("America/New_York")).strftime(">%H:%M</time>") in html
    listing = client.get(reverse("chat:sessions")).content.decode()
    assert "(America/New_York)" in listing and "UTC" not in listing
    zone = therapist.user.site.time_zone
    console = staff_client(therapist).get(console_url(live)).content.decode()
    assert f'data-tz="{zone}"' in console
    assert sent_at.astimezone(ZoneInfo(zone)).strftime(">%H:%M</time>") in console


@pytest.mark.parametrize("how", ["ended", "cancelled"])
def test_a_message_refused_because_the_session_closed_is_said_so_with_its_text(
    how, live, participant, therapist, participant_client, staff_client
):
    """Found by a review helper: the page said neither, and the text was lost."""
    client = participant_client(participant)
    client_id = client_id_of(client.get(session_url(live) + "?write=1").content.decode())
    if how == "ended":
        services.session_end(session=live, ended_by="therapist", actor="staff:1")
    else:
        services.session_cancel(session=live)
    response = client.post(session_url(live), {"body": WORRY, "client_id": client_id})
    html = response.content.decode()
    assert response.status_code == 400
    assert "Your message was not sent" in html and WORRY in html
    assert ChatMessage.objects.count() == 0
    console = staff_client(therapist).post(
        console_url(live), {"body": "Thank you for telling me", "client_id": "f-console01"}
    )
    assert console.status_code == 400
    assert "Thank you for telling me" in console.content.decode()


def test_an_escalation_from_a_site_without_a_supervisor_reaches_every_supervisor(
    book, participant, therapist_es, supervisor, site_es, staff_client
):
    """Found by a review helper: escalations of a site without a supervisor went to nobody,
    and the therapist was told a supervisor had been asked. The supervisor it reaches can
    open the session (read-only, audited) while the escalation is open."""
    from stopcsam.accounts.models import Role
    from stopcsam.conftest import _staff

    session = book(participant.participant, therapist_es.user)
    ChatSession.objects.filter(pk=session.pk).update(state="live", admitted_at=session.starts_at)
    services.message_send(
        session_id=session.pk, sender="participant", client_id="c-esc-00001", body=WORRY
    )
    lucia = staff_client(therapist_es)
    assert "Your site has no supervisor" in lucia.get(console_url(session)).content.decode()
    url = reverse("chat:console_escalate", args=[session.public_id])
    sent = lucia.post(url, {"reason": "Please review the risk"}, follow=True)
    assert "A supervisor has been asked to look at this session." in sent.content.decode()
    sabine = staff_client(supervisor)  # a supervisor of another site (DE)
    listing = sabine.get(reverse("chat:escalations")).content.decode()
    assert "Please review the risk" in listing
    assert selectors.study_id(participant_id=participant.participant.pk) in listing
    reads = AuditEvent.objects.filter(action="chat.transcript_read").count()
    page = sabine.get(console_url(session))
    html = page.content.decode()
    assert page.status_code == 200 and WORRY in html and "escalated it to you" in html
    assert 'name="body"' not in html and "End session" not in html  # read-only
    assert AuditEvent.objects.filter(action="chat.transcript_read").count() == reads + 1
    escalation = session.escalations.get()
    sabine.post(reverse("chat:escalations"), {"escalation": escalation.pk})
    assert sabine.get(console_url(session)).status_code == 404  # handled: access ends
    # Once the site has its own supervisor, its escalations go there only.
    _staff("pilar", Role.SUPERVISOR, site_es, ["es"])
    services.escalation_raise(session=session, raised_by=therapist_es.user, reason="Again")
    assert "Again" not in sabine.get(reverse("chat:escalations")).content.decode()
    assert sabine.get(console_url(session)).status_code == 404


def test_with_no_supervisor_at_all_the_therapist_is_told_to_follow_the_emergency_procedure(
    live, therapist, staff_client
):
    console = staff_client(therapist)
    assert (
        "No supervisor is set up in this service" in console.get(console_url(live)).content.decode()
    )
    url = reverse("chat:console_escalate", args=[live.public_id])
    sent = console.post(url, {"reason": "Please review the risk"}, follow=True).content.decode()
    assert "emergency procedure now" in sent
    assert "A supervisor has been asked" not in sent
    assert live.escalations.count() == 1  # recorded all the same


def test_the_sessions_list_says_when_a_waiting_room_is_open(
    book, participant, therapist, participant_client
):
    """Found by a review helper: it said "Not open yet" while the waiting room was open."""
    later = book(participant.participant, therapist.user, starts_in=timedelta(days=2))
    soon = book(participant.participant, therapist.user, starts_in=timedelta(minutes=5))
    page = participant_client(participant).get(reverse("chat:sessions")).content.decode()
    items = {
        s.public_id: item
        for s in (later, soon)
        for item in page.split("<li")
        if s.public_id in item
    }
    assert "Open now: enter the waiting room" in items[soon.public_id]
    assert "Not open yet" in items[later.public_id]


def test_the_start_of_a_long_session_is_in_reach_without_javascript(
    live, participant, participant_client
):
    """The page shows the last 200 messages; "Earlier messages" goes further back. Found by
    a review helper: the start of a long session was out of reach."""
    requests = [
        services.SendRequest(live.pk, "participant", f"c-long-{n:05d}", f"Line {n}")
        for n in range(1, 206)
    ]
    services.messages_send(requests=requests)
    client = participant_client(participant)
    page = client.get(session_url(live)).content.decode()
    assert "Line 205" in page and ">Line 5<" not in page and ">Line 6<" in page
    earlier = re.search(r'class="earlier"><a href="([^"]*\?before=6)"', page)
    assert earlier is not None
    start = client.get(earlier.group(1)).content.decode()
    assert ">Line 1<" in start and ">Line 5<" in start and ">Line 6<" not in start
    # Nothing earlier (the language links keep the page's ?before=, the place in it).
    assert 'class="earlier"' not in start


# --- accessibility, found by a review helper (2026-12-01); each failed on the old pages ------


def test_the_consoles_two_body_fields_have_ids_and_labels_of_their_own(
    live, therapist, staff_client
):
    """ "Private notes" labelled the reply box: Enter there went to the participant."""
    page = staff_client(therapist).get(console_url(live)).content.decode()
    assert page.count('id="id_body"') == 1 and page.count('id="note_body"') == 1
    assert '<label for="note_body">Private notes:</label>' in page


def test_the_no_js_waiting_room_refresh_can_be_stopped_and_started(
    book, participant, therapist, participant_client
):
    """WCAG 2.2.1: a page that refreshes itself lets the reader stop it."""
    session = book(participant.participant, therapist.user)
    services.session_enter(session=session, role="participant")
    client = participant_client(participant)
    page = client.get(session_url(session)).content.decode()
    assert 'http-equiv="refresh"' in page and "Stop refreshing automatically" in page
    assert 'id="chat-status"' in page  # where a script says what the socket does
    stopped = client.get(session_url(session) + "?auto=0").content.decode()
    assert 'http-equiv="refresh"' not in stopped
    assert "Refresh automatically every few seconds" in stopped


def test_the_log_is_no_live_region_and_bodies_carry_the_sessions_language(
    live, therapist, staff_client
):
    """Every "Read" marker and one's own messages were announced from the log; the chat
    script announces the other side's messages in a region of their own."""
    services.message_send(
        session_id=live.pk, sender="participant", client_id="c-lang-0001", body=WORRY
    )
    page = staff_client(therapist).get("/de" + console_url(live)[3:]).content.decode()
    assert '<html lang="de"' in page and live.language == "en"
    log = re.search(r'<ol class="chat-log"[^>]*>', page).group(0)  # type: ignore[union-attr]
    assert "aria-live" not in log
    assert 'id="chat-announce"' in page and f'<p lang="en">{WORRY}</p>' in page


def test_every_console_that_opens_a_socket_has_a_status_line(
    book, participant, therapist, staff_client
):
    session = book(participant.participant, therapist.user)
    page = staff_client(therapist).get(console_url(session)).content.decode()
    assert 'data-socket="' in page and page.count('id="chat-status"') == 1


def test_an_escalation_without_a_supervisor_is_an_alert_where_the_page_lands(
    live, therapist, staff_client
):
    client = staff_client(therapist)
    response = client.post(
        reverse("chat:console_escalate", args=[live.public_id]), {"reason": "Please review"}
    )
    assert response["Location"] == console_url(live)  # the top, where the message is
    page = client.get(response["Location"]).content.decode()
    assert re.search(r'<p class="error" role="alert">[^<]*emergency procedure', page)


def test_the_end_confirmation_takes_the_focus(live, therapist, staff_client):
    page = staff_client(therapist).post(console_url(live), {"action": "end"}).content.decode()
    assert re.search(r'<button[^>]*value="end"[^>]*autofocus', page)


def test_a_reply_half_written_survives_asking_to_end(live, therapist, staff_client):
    """'End session' was a form of its own: without JavaScript the reply being written was
    gone on the page that asks, and again after 'No, go back'. Both are buttons of the reply's
    form now, and the page gives the text back; nothing is sent, nothing ended."""
    client = staff_client(therapist)
    draft = {"body": "I am worried about what you said", "client_id": "c-therapist-77"}
    page = client.post(console_url(live), {**draft, "action": "end"}).content.decode()
    assert 'id="confirm-end"' in page
    assert re.search(r"<textarea[^>]*>\s*I am worried about what you said</textarea>", page)
    assert re.search(r'<button[^>]*form="compose"[^>]*value="check"', page)  # No, go back
    back = client.post(console_url(live), {**draft, "action": "check"}).content.decode()
    assert re.search(r"<textarea[^>]*>\s*I am worried about what you said</textarea>", back)
    assert 'id="confirm-end"' not in back
    assert re.search(r'<button[^>]*form="compose"[^>]*value="end"', back)  # End session
    live.refresh_from_db()
    assert live.state == SessionState.LIVE and not live.messages.exists()


def test_the_spanish_opening_time_reads_as_spanish(
    book, participant, therapist, participant_client
):
    """ "a partir de las 8 de diciembre": the sentence took a whole date (a review finding)."""
    later = book(participant.participant, therapist.user, starts_in=timedelta(days=7), number=2)
    page = participant_client(participant).get("/es" + session_url(later)[3:]).content.decode()
    assert "a partir del " in page and "a partir de las" not in page


def test_saved_notes_are_confirmed_beside_the_form(live, therapist, staff_client):
    client = staff_client(therapist)
    response = client.post(
        reverse("chat:console_notes", args=[live.public_id]),
        {"body": "Discussed a coping plan", "risk_level": "low", "risk_notes": ""},
    )
    assert response["Location"] == console_url(live) + "?saved=notes#notes"
    page = client.get(response["Location"].split("#")[0]).content.decode()
    notes = page[page.index('id="notes"') :]
    assert '<p class="notice" role="status">Notes saved.</p>' in notes[:400]


def test_a_therapist_moved_to_another_role_no_longer_lists_their_sessions(
    live, therapist, staff_client
):
    page = reverse("chat:console_sessions")
    browser = staff_client(therapist)
    assert console_url(live) in browser.get(page).content.decode()
    StaffUser.objects.filter(pk=therapist.user.pk).update(role=Role.COORDINATOR)
    assert console_url(live) not in browser.get(page).content.decode()
    assert browser.get(console_url(live)).status_code == 404  # as the listed link was


def _note_seen(page: str) -> str:
    """The version of the notes a console page's notes form was filled from ("" if none)."""
    found = re.search(r'name="seen"(?: value="([^"]*)")?', page)
    return (found and found.group(1)) or ""


def test_notes_saved_in_another_tab_meanwhile_are_not_overwritten_unseen(
    live, therapist, staff_client
):
    """Two tabs of one console (or a form sent again from the history): the page loaded
    first overwrote, without a word, a risk assessment saved after it was loaded."""
    from stopcsam.chat.models import SessionNote

    console = staff_client(therapist)
    url = reverse("chat:console_notes", args=[live.public_id])
    first_tab = console.get(console_url(live)).content.decode()
    second_tab = console.get(console_url(live)).content.decode()
    high = {
        "body": "Tab one: discussed a safety plan",
        "risk_level": "high",
        "risk_notes": "I looked at illegal images again last week",
    }
    assert console.post(url, {**high, "seen": _note_seen(first_tab)}).status_code == 302
    stale = {"body": "Tab two: a short note", "risk_level": "low", "risk_notes": ""}
    refused = console.post(url, {**stale, "seen": _note_seen(second_tab)})
    assert refused.status_code == 409
    note = SessionNote.objects.get(session=live)
    assert (note.body, note.risk_level) == (high["body"], "high")
    page = refused.content.decode()
    assert "saved in another window or tab" in page
    assert "Tab two: a short note" in page  # what was typed is kept
    assert "Tab one: discussed a safety plan" in page  # and what was saved is shown
    # Saved again from that page, knowingly: it replaces the notes.
    assert console.post(url, {**stale, "seen": _note_seen(page)}).status_code == 302
    assert SessionNote.objects.get(session=live).risk_level == "low"
    # The same form sent twice (a double click) is no conflict.
    again = {**high, "seen": _note_seen(console.get(console_url(live)).content.decode())}
    assert console.post(url, again).status_code == 302
    assert console.post(url, again).status_code == 302
    assert SessionNote.objects.get(session=live).risk_level == "high"


def test_a_console_answered_at_the_notes_or_escalation_address_posts_to_the_console(
    live, therapist, staff_client
):
    """A refused escalation or note is answered with the console at the form's own address:
    its reply box and 'End session' posted there too (the page's path), so without
    JavaScript a reply went to the notes form (into the notes, in place of the risk
    assessment) or to the escalation form, and was never sent; 'End session' ended nothing.
    Found by a review helper."""
    from stopcsam.chat.models import SessionNote

    console = staff_client(therapist)
    notes = reverse("chat:console_notes", args=[live.public_id])
    console.post(notes, {"body": "Safety plan agreed", "risk_level": "high", "risk_notes": ""})
    refused = console.post(
        reverse("chat:console_escalate", args=[live.public_id]), {"reason": "   "}
    )
    assert refused.status_code == 400
    page = refused.content.decode()
    compose = re.search(r'<form method="post" action="([^"]*)" class="compose', page).group(1)
    assert compose == console_url(live) + "#compose"
    for form in re.findall(r'<form method="post"[^>]*class="end[^"]*"[^>]*>', page):
        assert f'action="{console_url(live)}"' in form
    sent = console.post(compose, {"body": WORRY, "client_id": client_id_of(page), "action": "send"})
    assert sent.status_code == 302
    assert ChatMessage.objects.filter(session=live, sender="therapist").count() == 1
    assert SessionNote.objects.get(session=live).risk_level == "high"


def test_the_links_of_a_feedback_page_with_an_error_lead_somewhere(
    live, participant, participant_client
):
    """Feedback sent without an answer is shown again at the feedback address, which took
    only a post: its language links (and "Earlier messages") were a blank 405 page. Found by
    a review helper."""
    services.session_end(session=live, ended_by="therapist", actor="staff:1")
    client = participant_client(participant)
    feedback = reverse("chat:feedback", args=[live.public_id])
    page = client.post(feedback, {}).content.decode()
    assert "Please choose an answer." in page
    german = "/de" + feedback[3:]
    assert f'href="{german}"' in page  # the page in German: this address, as a link
    followed = client.get(german + "?before=5")
    assert (followed.status_code, followed["Location"]) == (
        302,
        "/de" + session_url(live)[3:] + "?before=5",
    )
    assert 'name="rating"' in client.get(followed["Location"]).content.decode()


@pytest.mark.parametrize("who", ["participant", "therapist"])
def test_checking_for_new_messages_keeps_the_message_being_written(
    who, live, participant, therapist, participant_client, staff_client
):
    """Without JavaScript, "Check for new messages" under a message half written was a form
    of its own: the page it loaded had an empty box. It belongs to the message's form now,
    stores nothing, and gives the text back with the new messages. Found by a review helper."""
    client = participant_client(participant) if who == "participant" else staff_client(therapist)
    url = session_url(live) if who == "participant" else console_url(live)
    write = client.get(url + "?write=1").content.decode()
    compose = re.search(r'<form[^>]*id="compose".*?</form>', write, flags=re.S).group(0)
    assert 'value="check"' in compose and "formnovalidate" in compose  # no GET form wipes it
    other = "therapist" if who == "participant" else "participant"
    services.message_send(session_id=live.pk, sender=other, client_id="c-other-01", body=WORRY)
    draft = "I have been thinking\r\nabout last week"
    checked = client.post(
        url, {"body": draft, "client_id": client_id_of(write), "auto": "1", "action": "check"}
    )
    html = checked.content.decode()
    assert checked.status_code == 200
    assert WORRY in html  # the new message
    assert ">\nI have been thinking\nabout last week</textarea>" in html  # and the draft, kept
    assert client_id_of(html) == client_id_of(write)
    assert '<input type="hidden" name="auto" value="1">' in html  # sending resumes the refresh
    assert "errorlist" not in html
    assert ChatMessage.objects.count() == 1  # nothing stored
    empty = client.post(url, {"body": "", "client_id": client_id_of(write), "action": "check"})
    assert (empty.status_code, empty["Location"]) == (302, f"{url}#latest")
    services.session_end(session=live, ended_by="therapist", actor="staff:1")
    if who == "participant":  # ended meanwhile: said so, with the text
        ended = client.post(url, {"body": draft, "client_id": "f-abcdefgh", "action": "check"})
        assert "Your message was not sent" in ended.content.decode()
        assert "I have been thinking<br>about last week" in ended.content.decode()
    assert ChatMessage.objects.count() == 1


def test_a_message_refused_lands_on_the_form_that_says_why(live, participant, participant_client):
    """Without JavaScript a refused message (too fast, empty, storage away) was answered with
    the page from its top: its error and the text given back were under the whole transcript,
    out of view. The form's address names it, as a sent message lands on ``#latest``. Found
    by a review helper."""
    client = participant_client(participant)
    url = session_url(live)
    page = client.get(url + "?write=1").content.decode()
    assert f'action="{url}#compose"' in page and 'id="compose"' in page
    sent = client.post(url + "#compose", {"body": WORRY, "client_id": client_id_of(page)})
    assert sent["Location"] == f"{url}#latest"  # its own fragment: the fragment posted to goes


def test_without_javascript_the_newest_messages_are_where_the_page_lands():
    """The log is a box that scrolls by itself (60% of the screen), and only chat.js scrolls
    it to its newest message. Without JavaScript it opened at its oldest: once a conversation
    filled it, every refresh (every few seconds) showed the start of the session and put the
    box back there, while ``#latest`` landed the page under it. Without JavaScript the log is
    part of the page. Found by a review helper (no browser here: the rule is read)."""
    from pathlib import Path

    from django.contrib.staticfiles import finders

    css = Path(finders.find("chat/chat.css")).read_text(encoding="utf-8")
    rule = re.search(r"html:not\(\.js\) \.chat-log \{([^}]*)\}", css)
    assert rule and "max-height: none" in rule.group(1) and "overflow-y: visible" in rule.group(1)


def test_a_page_that_answered_a_form_names_its_own_address_for_chat_js(
    live, therapist, staff_client, participant, participant_client
):
    """chat.js loads the page again when the session's state changes; a page that answered a
    form (a refused note or escalation, a refused message) was reloaded as the POST it came
    from, and the browser's 'send again?' could save an older note over newer ones. Such a
    page names its own address (data-page) for chat.js to go to instead; a page loaded by GET
    names none, and reloads as it is (its query kept)."""
    console = staff_client(therapist)
    refused = console.post(
        reverse("chat:console_escalate", args=[live.public_id]), {"reason": "   "}
    ).content.decode()
    assert f'data-page="{console_url(live)}"' in refused
    assert "data-page=" not in console.get(console_url(live)).content.decode()
    client = participant_client(participant)
    url = session_url(live)
    empty = client.post(url, {"body": "   ", "client_id": "abcdefgh12345678"})
    assert empty.status_code == 400
    assert f'data-page="{url}"' in empty.content.decode()
    assert "data-page=" not in client.get(url).content.decode()


def test_the_participant_page_title_says_where_the_session_is(
    book, participant, therapist, participant_client
):
    """The title is what a screen reader says first when the page refreshes itself, without
    JavaScript, from the waiting room into the session: it named neither (a review
    finding)."""
    client = participant_client(participant)
    session = book(participant.participant, therapist.user, number=2, of=4)
    url = session_url(session)
    assert "<title>Waiting room</title>" in client.get(url).content.decode()
    services.session_admit(session=session, therapist=therapist.user)
    assert "<title>Session 2 of 4</title>" in client.get(url).content.decode()
    services.session_end(session=session, ended_by="therapist", actor=therapist.user.audit_ref)
    assert "<title>The session has ended</title>" in client.get(url).content.decode()


def test_the_timer_names_the_end_s_own_time(live, participant, participant_client):
    """'Time left' goes stale on a page that does not refresh (being written on, without
    JavaScript), and read '0 min left' through the grace period: the end's own time stays
    true (a review finding). chat.js redraws only the minutes, beside it."""
    from zoneinfo import ZoneInfo

    from stopcsam.core import zones

    client = participant_client(participant)
    session = client.session
    session[zones.SESSION_KEY] = "America/New_York"  # the reader's zone, not the server's
    session.save()
    page = client.get(session_url(live) + "?write=1").content.decode()
    ends = live.ends_at.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M")
    found = re.search(r'<span id="chat-timer-left">\s*Time left: (\d+) min</span>', page)
    assert found and 49 <= int(found.group(1)) <= 50
    assert f"(ends at {ends})" in page


def test_the_database_away_is_a_page_that_tries_again_not_a_500(
    book, participant, therapist, participant_client, caplog
):
    """SQLite's lock held past its timeout while the participant entered the waiting room
    answered a plain 500, and the page without JavaScript stopped refreshing for good (a
    review finding). A page being read loads itself again; a form's answer says what it sent
    may not be stored, and does not send it again. The log names the kind, not the text."""
    from unittest import mock

    from django.db import OperationalError
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.utils import translation

    from stopcsam.core.middleware import BusyMiddleware

    client = participant_client(participant)
    waiting = book(participant.participant, therapist.user)
    away = OperationalError("database is locked: I am worried about my urges")
    with mock.patch("stopcsam.chat.appointments.notify_joined", side_effect=away):
        page = client.get(session_url(waiting).replace("/en/", "/de/"))
    assert page.status_code == 503 and page["Retry-After"] == "10"
    html = page.content.decode()
    assert '<meta http-equiv="refresh" content="10">' in html
    assert "Gerade kurz nicht verfügbar" in html and 'lang="de"' in html
    assert "worried" not in caplog.text and "OperationalError" in caplog.text
    assert client.get(session_url(waiting)).status_code == 200  # entered once it is back
    # A form (the chat's own posts answer a storage fault in place, with the text given back).
    request = RequestFactory().post("/en/me/")
    with translation.override("en"):
        sent = BusyMiddleware(lambda r: HttpResponse()).process_exception(request, away)
    assert sent is not None and sent.status_code == 503
    assert "http-equiv" not in sent.content.decode()
    assert "may not have been saved" in sent.content.decode()


def test_the_page_gives_chat_js_what_its_page_mode_needs(live, participant, participant_client):
    """chat.js falls back to the form when websockets are blocked on the way while the page
    loads (tests/js): it says so in the page's language, shows the form's own 'Check for new
    messages', and refreshes a page that refreshes itself without JavaScript to where that
    one would (a review finding: 'Reconnecting…' for good)."""
    client = participant_client(participant)
    url = session_url(live)
    german = client.get(url.replace("/en/", "/de/")).content.decode()
    assert 'data-t-page-mode="Die Live-Verbindung ist in diesem Netzwerk blockiert.' in german
    page = client.get(url).content.decode()
    assert re.search(r'<button [^>]*value="check" class="[^"]*\bin-page-mode\b', page)
    assert "data-refresh-to=" not in page
    auto = client.get(url + "?auto=1").content.decode()
    found = re.search(r'data-refresh="(\d+)" data-refresh-to="([^"]+)"', auto)
    assert found and found.group(2).startswith(url + "?auto=1")
