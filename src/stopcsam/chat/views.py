"""Thin views: the participant's sessions and chat, the therapist's console.

Every page works without JavaScript: messages are posted by a form (idempotent through its
client id) and the transcript refreshes with a button or by itself. The static script
``chat/chat.js`` upgrades the same page to the websocket protocol.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages as django_messages
from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from stopcsam.accounts.decorators import participant_required, staff_verified_required
from stopcsam.accounts.models import StaffUser
from stopcsam.chat import selectors, services, timing
from stopcsam.chat.exceptions import (
    ChatError,
    NotAllowedError,
    NoteChangedError,
    ReadAlongOverError,
    SendingTooFastError,
    SessionEndedError,
    SessionErasedError,
    SessionNotFoundError,
    SessionNotOpenError,
    StorageUnavailableError,
)
from stopcsam.chat.forms import (
    EscalationForm,
    FeedbackForm,
    MessageField,
    MessageForm,
    NoteForm,
    new_client_id,
)
from stopcsam.chat.models import CLOSED_STATES, ChatSession, Sender, SessionState
from stopcsam.core import clock
from stopcsam.core.zones import in_reader_zone

TRANSCRIPT_TAIL = 200
NO_SUPERVISOR = gettext_lazy(
    "The escalation is recorded, but no supervisor is set up in this service to see it. "
    "Follow your site's emergency procedure now."
)


def _participant_session(request: HttpRequest, public_id: str) -> ChatSession:
    try:
        return selectors.session_for_participant(
            participant=request.participant,  # type: ignore[attr-defined]
            public_id=public_id,
        )
    except SessionNotFoundError as exc:
        raise Http404 from exc


def _staff_session(request: HttpRequest, public_id: str) -> tuple[ChatSession, str]:
    try:
        return selectors.session_for_staff(user=request.user, public_id=public_id)  # type: ignore[arg-type]
    except SessionNotFoundError as exc:
        raise Http404 from exc


def _live_context(session: ChatSession, form: MessageForm | None, role: str) -> dict[str, Any]:
    now = clock.now()
    left = timing.remaining_seconds(session, now)
    return {
        "session": session,
        "role": role,
        "form": form or MessageForm(initial={"client_id": new_client_id()}),
        "minutes_left": max(0, (left + 59) // 60) if left is not None else None,
        "warning": timing.in_warning(session, now),
        # How far the other side has read: "Read" under the messages it covers.
        "read_up_to": session.read_by_other_side(role),
        "refresh_seconds": settings.CHAT_NOJS_REFRESH_SECONDS,
        "opens_at": timing.opens_at(session),
    }


# --- participant -------------------------------------------------------------------------------


@participant_required
@in_reader_zone
def participant_sessions(request: HttpRequest) -> HttpResponse:
    sessions = selectors.sessions_of_participant(participant=request.participant)  # type: ignore[attr-defined]
    now = clock.now()
    for session in sessions:  # "Not open yet" read wrong once the waiting room had opened
        session.open_now = timing.waiting_room_open(session, now)  # type: ignore[attr-defined]
    return render(request, "chat/sessions.html", {"sessions": sessions})


@participant_required
@require_http_methods(["GET", "POST"])
@in_reader_zone
def participant_session(request: HttpRequest, public_id: str) -> HttpResponseBase:
    session = _participant_session(request, public_id)
    try:
        session = services.session_enter(session=session, role=Sender.PARTICIPANT)
    except SessionNotOpenError:
        return render(request, "chat/not_open.html", _live_context(session, None, "participant"))
    except SessionEndedError as error:  # cancelled: a message posted is not stored
        context: dict[str, Any] = {"session": session}
        status = 200
        if request.method == "POST":  # said so, with the text, which would be lost otherwise
            refused = MessageForm(request.POST)
            refused.is_valid()
            refused.add_error(None, str(error.message))
            context["form"], status = refused, 400
        return render(request, "chat/session.html", context, status=status)
    form, status = _posted_message(request, session, Sender.PARTICIPANT)
    if form is None:
        return _back_to_latest(request)
    context = _live_context(session, form, "participant")
    context["messages_shown"] = _shown(
        session, _tail(session, request.GET.get("before")), Sender.PARTICIPANT
    )
    context.update(_refreshing(request, session))
    # The waiting room refreshes by itself, and into the live page that does too; an ended
    # page never (it would wipe the feedback being chosen).
    # It can be stopped (WCAG 2.2.1; a review finding): ``auto=0``.
    waiting = session.state == SessionState.WAITING and request.GET.get("auto") != "0"
    context["auto"] = context["auto"] or waiting
    context["feedback_form"] = FeedbackForm()
    return render(request, "chat/session.html", context, status=status)


def _refreshing(request: HttpRequest, session: ChatSession) -> dict[str, Any]:
    """Automatic refresh without JavaScript, while the session is open. A page that
    refreshes itself would wipe a message half written, so it shows no compose form, only a
    link to write: the page without the refresh (``write``), whose form carries ``auto`` so
    that sending goes back to the refreshing page (``_back_to_latest``). The refresh itself
    asks for ``auto``, so the waiting room's leads to a live page that refreshes too."""
    # The refresh's address alternates ``r``: a refresh to the page's own address and a
    # fragment is only a scroll to it, and the page never loaded again (the no-JS waiting
    # room stayed on for good); with ``#latest`` the newest message is in view.
    turn = "0" if request.GET.get("r") == "1" else "1"
    return {
        "refresh_to": f"{request.path}?auto=1&r={turn}#latest",
        "auto": request.GET.get("auto") == "1" and session.state not in CLOSED_STATES,
        "resume_auto": request.GET.get("write") == "1" or request.POST.get("auto") == "1",
    }


def _back_to_latest(request: HttpRequest) -> HttpResponse:
    """After a post: the end of the transcript, refreshing itself again if it did before."""
    resume = request.POST.get("auto") == "1" or request.GET.get("auto") == "1"
    return redirect(request.path + ("?auto=1" if resume else "") + "#latest")


def _posted_message(
    request: HttpRequest, session: ChatSession, sender: str
) -> tuple[MessageForm | None, int]:
    """Store a posted message; None means stored, or an empty box checked (redirect), else
    the form to show."""
    if request.method != "POST":
        return MessageForm(initial={"client_id": new_client_id()}), 200
    if request.POST.get("action") == "check":
        # "Check for new messages" without JavaScript: the page again, with the message being
        # written given back unsent (a review finding: a form of its own, the button wiped
        # it). A session no longer live goes on below, where the store refuses the text (it
        # takes messages only while live) and the page says so and gives it back.
        draft = _draft(request)
        if draft is None:
            return None, 303
        if session.state == SessionState.LIVE:
            return draft, 200
    form = MessageForm(request.POST)
    if form.is_valid():
        try:
            services.message_post_spend(session=session, sender=sender)
            services.message_send(
                session_id=session.pk,
                sender=sender,
                client_id=form.cleaned_data["client_id"],
                body=form.cleaned_data["body"],
            )
            return None, 303
        except SendingTooFastError as error:
            form.add_error(None, str(error.message))
            return form, 429
        except DatabaseError:
            # As the socket's ``unavailable``: not sent, said so, and the text and its client
            # id given back, so that sending it again cannot store it twice (a review finding:
            # a 500 page lost the text).
            if not connection.in_atomic_block:
                connection.close()
            form.add_error(None, str(StorageUnavailableError.message))
            return form, 503
        except ChatError as error:
            form.add_error(None, str(error.message))
    return form, 400


def _draft(request: HttpRequest) -> MessageForm | None:
    """The message being written, as the form to show again (not sent); None if empty."""
    body = MessageField().to_python(request.POST.get("body", ""))
    if not body.strip():
        return None
    client_id = request.POST.get("client_id", "")
    if not services.CLIENT_ID.match(client_id):
        client_id = new_client_id()
    return MessageForm(initial={"body": body, "client_id": client_id})


def _shown(
    session: ChatSession, messages: list[selectors.MessageView], reader: str
) -> list[selectors.MessageView]:
    """Messages on the page of one side are read by it, as chat.js marks them: a page without
    JavaScript tells the other side too."""
    read = session.read_by(reader)  # None for a supervisor reading along: marks nothing
    if read is not None and messages and messages[-1].seq > read:
        services.read_marks(marks=[services.ReadMark(session.pk, reader, messages[-1].seq)])
    return messages


def _tail(session: ChatSession, before: str | None = None) -> list[selectors.MessageView]:
    """The last TRANSCRIPT_TAIL messages, or those before the number ``before`` (the page's
    "Earlier messages" link: without JavaScript the start of a long session was out of
    reach)."""
    end = session.last_seq + 1
    # A seq fits in 10 digits; a longer one was a ValueError past Python's 4,300-digit limit
    # for int() (a 500; a review finding).
    if before is not None and before.isascii() and before.isdigit() and len(before) <= 10:
        end = max(1, min(end, int(before)))
    after = max(0, end - 1 - TRANSCRIPT_TAIL)
    shown = selectors.messages_after(session_id=session.pk, after=after, limit=TRANSCRIPT_TAIL)
    return [message for message in shown if message.seq < end]


@participant_required
@require_http_methods(["GET", "POST"])
@in_reader_zone
def participant_feedback(request: HttpRequest, public_id: str) -> HttpResponseBase:
    if request.method == "GET":
        # An answer refused is shown at this address, whose links (the language links,
        # "Earlier messages") lead here again: a blank 405 page (a review finding). They lead
        # to the session's own page, which shows the question as long as it is unanswered.
        query = request.GET.urlencode()
        return redirect(reverse("chat:session", args=[public_id]) + (f"?{query}" if query else ""))
    session = _participant_session(request, public_id)
    form = FeedbackForm(request.POST)
    if form.is_valid():
        try:
            services.feedback_record(session=session, rating=form.cleaned_data["rating"])
            # A redirect: the thanks stay on the session's own page, which a reload or a
            # change of language can load again (this address takes only a post).
            return redirect("chat:session", public_id=session.public_id)
        except ChatError as error:
            form.add_error(None, str(error.message))
    context = _live_context(session, None, "participant")
    context.update(messages_shown=_tail(session), feedback_form=form)
    return render(request, "chat/session.html", context, status=400)


# --- therapist console -------------------------------------------------------------------------


@staff_verified_required
@in_reader_zone
def console_sessions(request: HttpRequest) -> HttpResponse:
    sessions = selectors.sessions_of_therapist(user=request.user)  # type: ignore[arg-type]
    return render(request, "chat/console_sessions.html", {"sessions": sessions})


@staff_verified_required
@require_http_methods(["GET", "POST"])
@in_reader_zone
def console(request: HttpRequest, public_id: str) -> HttpResponseBase:
    try:
        session, access = selectors.session_for_staff(user=request.user, public_id=public_id)  # type: ignore[arg-type]
    except ReadAlongOverError as over:
        # The page of a supervisor reading along loads again when the session ends: it says
        # why reading stopped, on the supervisor's list, where a bare 404 told nothing.
        django_messages.info(request, str(over.message))
        return redirect("chat:escalations")
    except SessionNotFoundError as exc:
        raise Http404 from exc
    services.session_expire_if_due(session=session)
    if request.method == "POST" and access != selectors.THERAPIST:
        return _read_only(request, session, access)
    if request.method == "POST":
        done = _console_action(request, session)
        if done is not None:
            return done
    return _render_console(request, session, access, MessageForm(request.POST or None))


def _read_only(request: HttpRequest, session: ChatSession, access: str) -> HttpResponse:
    """A supervisor reading along (or through an escalation) may not write, admit, end, take
    notes or escalate: said so, where what was sent was dropped without a word (a review
    finding)."""
    django_messages.error(request, str(NotAllowedError.message))
    return _render_console(request, session, access, MessageForm(), status=403)


def _console_action(request: HttpRequest, session: ChatSession) -> HttpResponseBase | None:
    action = request.POST.get("action")
    try:
        if action == "admit":
            services.session_admit(session=session, therapist=request.user)  # type: ignore[arg-type]
        elif action == "end" and request.POST.get("confirm") != "1":
            # One click under Send ended the session for good: it is asked once more. The
            # button sends the message form, so the reply being written stays in its box.
            kept = _draft(request) or MessageForm(initial={"client_id": new_client_id()})
            return _render_console(request, session, selectors.THERAPIST, kept, confirm_end=True)
        elif action == "end":
            services.session_end(
                session=session,
                ended_by="therapist",
                actor=request.user.audit_ref,  # type: ignore[union-attr]
                therapist=request.user,  # type: ignore[arg-type]
            )
        else:
            form, status = _posted_message(request, session, Sender.THERAPIST)
            if form is not None:
                return _render_console(request, session, selectors.THERAPIST, form, status=status)
    except ChatError as error:
        # An admit or an end refused, said above the page: an unbound form takes no error, and
        # the compose form is shown only while the session is live.
        django_messages.error(request, str(error.message))
        return _render_console(request, session, selectors.THERAPIST, MessageForm(), status=400)
    return _back_to_latest(request)


def _render_console(
    request: HttpRequest,
    session: ChatSession,
    access: str,
    form: MessageForm,
    *,
    status: int = 200,
    note_form: NoteForm | None = None,
    escalation_form: EscalationForm | None = None,
    confirm_end: bool = False,
    notes_meanwhile: Any = None,
) -> HttpResponse:
    session.refresh_from_db()
    if not form.is_bound and not form.initial:  # with ``initial``: a draft given back
        form = MessageForm(initial={"client_id": new_client_id()})
    role = "therapist" if access == selectors.THERAPIST else selectors.READ_ALONG  # read-only
    context = _live_context(session, form, role)
    note = getattr(session, "note", None)
    transcript = selectors.transcript_for_staff(
        user=request.user,  # type: ignore[arg-type]
        session=session,
        via=f"console.{access}",
    )
    # The page's socket, opened with this sign-in, replays nothing of what this audited read
    # showed: its hello is not a second read (selectors.staff_hello_audit).
    selectors.page_read_note(
        session_key=request.session.session_key or "",
        session=session,
        role=role,
        seq=transcript[-1].seq if transcript else 0,
    )
    context.update(
        access=access,
        messages_shown=_shown(
            session, transcript, Sender.THERAPIST if access == selectors.THERAPIST else ""
        ),
        study_id=selectors.study_id(participant_id=session.participant_id),
        previous=selectors.previous_sessions(session=session),
        note_form=note_form
        or NoteForm(
            initial={
                "body": note.body,
                "risk_level": note.risk_level,
                "risk_notes": note.risk_notes,
                "seen": services.note_version(note),
            }
            if note
            else None
        ),
        notes_meanwhile=notes_meanwhile,
        escalation_form=escalation_form or EscalationForm(),
        escalation_reach=selectors.escalation_reach(therapist=session.therapist),
        confirm_end=confirm_end,
        # The console's own address, for its forms and links: a refused note or escalation
        # answers with the console at the form's address, and a reply or 'End session' sent
        # from there went to the notes or escalation form (a review finding).
        page_path=reverse("chat:console", args=[session.public_id]),
        guide=selectors.session_guide(number=session.number, language=get_language() or "en"),
        **_refreshing(request, session),
    )
    return render(request, "chat/console.html", context, status=status)


@staff_verified_required
@require_POST
@in_reader_zone
def console_notes(request: HttpRequest, public_id: str) -> HttpResponseBase:
    session, access = _staff_session(request, public_id)
    if access != selectors.THERAPIST:
        return _read_only(request, session, access)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            services.note_save(session=session, author=request.user, **form.cleaned_data)  # type: ignore[arg-type]
            # Said beside the form it answers (a message at the top would be out of view).
            return redirect(reverse("chat:console", args=[public_id]) + "?saved=notes#notes")
        except SessionErasedError:
            raise Http404 from None  # erased with its participant meanwhile: gone, as on reload
        except NoteChangedError as changed:
            # What was typed stays in the form, the notes saved meanwhile are shown above it,
            # and the form now names their version: saving again replaces them knowingly.
            data = request.POST.copy()
            data["seen"] = services.note_version(changed.note)  # type: ignore[arg-type]
            form = NoteForm(data)
            form.is_valid()
            form.add_error(None, str(changed.message))
            return _render_console(
                request,
                session,
                access,
                MessageForm(),
                status=409,
                note_form=form,
                notes_meanwhile=changed.note,
            )
        except ChatError as error:
            form.add_error(None, str(error.message))
    return _render_console(request, session, access, MessageForm(), status=400, note_form=form)


@staff_verified_required
@require_POST
@in_reader_zone
def console_escalate(request: HttpRequest, public_id: str) -> HttpResponseBase:
    session, access = _staff_session(request, public_id)
    if access != selectors.THERAPIST:
        return _read_only(request, session, access)
    form = EscalationForm(request.POST)
    if form.is_valid():
        try:
            services.escalation_raise(
                session=session,
                raised_by=request.user,  # type: ignore[arg-type]
                reason=form.cleaned_data["reason"],
            )
            # A redirect: reloading the page that says so does not escalate again.
            reach = selectors.escalation_reach(therapist=session.therapist)
            if reach == "none":
                django_messages.error(request, NO_SUPERVISOR)
            else:
                django_messages.success(
                    request, _("A supervisor has been asked to look at this session.")
                )
            # To the top of the console, where the message is (a review finding: at the
            # form's anchor it was out of view).
            return redirect(reverse("chat:console", args=[public_id]))
        except SessionErasedError:
            raise Http404 from None
        except ChatError as error:
            form.add_error(None, str(error.message))
    return _render_console(
        request, session, access, MessageForm(), status=400, escalation_form=form
    )


@staff_verified_required
@in_reader_zone
def console_transcript(request: HttpRequest, public_id: str, earlier_id: str) -> HttpResponse:
    session, access = _staff_session(request, public_id)
    earlier = next(
        (s for s in selectors.previous_sessions(session=session) if s.public_id == earlier_id),
        None,
    )
    if access != selectors.THERAPIST or earlier is None:
        raise Http404
    shown = selectors.transcript_for_staff(user=request.user, session=earlier, via="previous")  # type: ignore[arg-type]
    return render(
        request,
        "chat/transcript.html",
        {"session": session, "earlier": earlier, "messages_shown": shown},
    )


@staff_verified_required
@require_http_methods(["GET", "POST"])
@in_reader_zone
def escalations(request: HttpRequest) -> HttpResponseBase:
    """The supervisor's list of open escalations at their site, and of those that went with
    their participant's data."""
    user: StaffUser = request.user  # type: ignore[assignment]
    open_ones = selectors.escalations_for_supervisor(user=user)
    erased = selectors.erased_escalations_for_supervisor(user=user)
    if request.method == "POST":
        if "erased" in request.POST:
            dismissed = next((e for e in erased if str(e.pk) == request.POST["erased"]), None)
            handled = dismissed is not None
            if dismissed is not None:
                services.erased_escalation_dismiss(erased=dismissed, supervisor=user)
        else:
            wanted = request.POST.get("escalation")
            chosen = next((e for e in open_ones if str(e.pk) == wanted), None)
            handled = chosen is not None
            if chosen is not None:
                services.escalation_resolve(escalation=chosen, supervisor=user)
        if not handled:
            # Handled meanwhile (a double click, another supervisor), or not one of this
            # supervisor's: the list as it is now, where a 404 page said nothing useful (a
            # review finding). The same answer for any id: it tells of no other site's.
            django_messages.info(request, _("That escalation is no longer open."))
        else:
            django_messages.success(request, _("The escalation is marked as handled."))
        return redirect("chat:escalations")
    causes = {e.cause for e in erased}  # each explained once, above the list
    return render(
        request,
        "chat/escalations.html",
        {"escalations": open_ones, "erased": erased, "erased_causes": causes},
    )
