"""Thin views: parse, authorise through a selector, call a service, render.

Every page works without JavaScript; a static script only pre-selects the browser's time zone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, QueryDict
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from stopcsam.accounts.decorators import participant_required, staff_verified_required
from stopcsam.accounts.models import Role
from stopcsam.core import clock, zones
from stopcsam.scheduling import ics, selectors, services
from stopcsam.scheduling.exceptions import (
    AlreadyHasCourseError,
    BookingNotAllowedError,
    ChangeTooLateError,
    EarlierCourseError,
    NotChangeableError,
    ProposalInvalidError,
    SchedulingError,
    SlotUnavailableError,
)
from stopcsam.scheduling.forms import (
    CancelForm,
    ChooseStartForm,
    ConfirmCourseForm,
    RescheduleForm,
    ZoneForm,
    is_zone,
)
from stopcsam.scheduling.models import Appointment, Status
from stopcsam.scheduling.services import Actor

TZ_SESSION_KEY = zones.SESSION_KEY  # the chat shows its times in the same zone


def _error_message(exc: SchedulingError) -> str:
    messages_by_type: list[tuple[type[SchedulingError], str]] = [
        (BookingNotAllowedError, _("Booking is not open for you at this stage of the study.")),
        (AlreadyHasCourseError, _("You already have booked sessions. You can change them below.")),
        (SlotUnavailableError, _("That time is no longer free. Please choose another time.")),
        (ProposalInvalidError, _("This plan is no longer valid. Please choose a time again.")),
        (ChangeTooLateError, _("It is too close to the session to change it here.")),
        (NotChangeableError, _("This session cannot be changed any more.")),
        (
            EarlierCourseError,
            _(
                "This session belongs to an earlier course; a newer course has started since, "
                "so no new time can be booked for it."
            ),
        ),
    ]
    for kind, text in messages_by_type:
        if isinstance(exc, kind):
            return text
    return _("This change is not possible. Please try again.")


def _posted(request: HttpRequest) -> QueryDict | None:
    return request.POST if request.method == "POST" else None


def _status(form: Any) -> int:
    return 400 if getattr(form, "errors", None) else 200


# --- time zone ------------------------------------------------------------------------------


def participant_zone(request: HttpRequest) -> str:
    """The zone chosen (query, then session), else the default for the participant's language."""
    chosen = request.GET.get("tz", "")
    if chosen and is_zone(chosen):
        request.session[TZ_SESSION_KEY] = chosen
        return chosen
    return zones.reader_zone(request)  # the one kept, else the language's (as the chat reads)


def _zone_context(request: HttpRequest) -> dict[str, Any]:
    tz = participant_zone(request)
    chosen = bool(request.GET.get("tz") or request.session.get(TZ_SESSION_KEY))
    return {"tz": tz, "zone_form": ZoneForm(initial={"tz": tz}), "zone_chosen": chosen}


def _by_local_day(starts: list[datetime], tz: str) -> list[tuple[date, list[datetime]]]:
    days: dict[date, list[datetime]] = defaultdict(list)
    zone = ZoneInfo(tz)
    for start in starts:
        days[start.astimezone(zone).date()].append(start)
    return sorted(days.items())


# --- participant ----------------------------------------------------------------------------


@participant_required
@require_GET
def my_sessions(request: HttpRequest) -> HttpResponse:
    participant = request.participant  # type: ignore[attr-defined]
    context = {
        **_zone_context(request),
        "courses": selectors.participant_courses(participant=participant),
        "open_course": selectors.open_course(participant=participant),
        "notices": selectors.open_notices(participant=participant),
        # As book() decides: a course fully attended leaves nothing to book.
        "may_book": selectors.may_book(participant) and selectors.sessions_left(participant) > 0,
        "now": clock.now(),
    }
    return render(request, "scheduling/my_sessions.html", context)


@participant_required
@require_GET
def book(request: HttpRequest) -> HttpResponseBase:
    participant = request.participant  # type: ignore[attr-defined]
    if selectors.open_course(participant=participant):
        return redirect("scheduling:mine")
    if not selectors.may_book(participant) or selectors.sessions_left(participant) < 1:
        return redirect("scheduling:mine")  # which says so (a notice too said it twice)
    context = _zone_context(request)
    starts = selectors.free_start_times(language=participant.language)
    weeks = _by_week(_by_local_day(starts, context["tz"]))
    index = _page_number(request.GET.get("week", ""), len(weeks))
    return render(
        request,
        "scheduling/book.html",
        {
            **context,
            "days": weeks[index] if weeks else [],
            "previous_week": index - 1 if index > 0 else None,
            "next_week": index + 1 if index + 1 < len(weeks) else None,
        },
    )


def _by_week(
    days: list[tuple[date, list[datetime]]],
) -> list[list[tuple[date, list[datetime]]]]:
    """One page per local ISO week, so a page stays short over a slow connection."""
    weeks: dict[tuple[int, int], list[tuple[date, list[datetime]]]] = defaultdict(list)
    for day, starts in days:
        weeks[day.isocalendar()[:2]].append((day, starts))
    return [weeks[key] for key in sorted(weeks)]


def _page_number(raw: str, pages: int) -> int:
    number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 4 else 0
    return min(number, max(pages - 1, 0))


@participant_required
@require_GET
def propose(request: HttpRequest) -> HttpResponseBase:
    participant = request.participant  # type: ignore[attr-defined]
    form = ChooseStartForm(request.GET)
    context = _zone_context(request)
    if not form.is_valid():
        return render(request, "scheduling/propose.html", {**context, "form": form}, status=400)
    proposal = selectors.course_proposal(participant=participant, first=form.cleaned_data["start"])
    if proposal is None:
        messages.error(request, _("That time is no longer free. Please choose another time."))
        return redirect("scheduling:book")
    starts = ",".join(str(int(s.start.timestamp())) for s in proposal.sessions)
    return render(
        request,
        "scheduling/propose.html",
        {**context, "form": form, "proposal": proposal, "starts": starts},
    )


@participant_required
@require_POST
def confirm(request: HttpRequest) -> HttpResponseBase:
    form = ConfirmCourseForm(request.POST)
    if not form.is_valid():
        context = {**_zone_context(request), "form": form}
        return render(request, "scheduling/propose.html", context, status=400)
    try:
        services.course_book(
            participant=request.participant,  # type: ignore[attr-defined]
            therapist_id=form.cleaned_data["therapist"],
            starts=form.cleaned_data["starts"],
        )
    except SchedulingError as exc:
        messages.error(request, _error_message(exc))
        return redirect("scheduling:book")
    messages.success(request, _("Your sessions are booked."))
    return redirect("scheduling:mine")


def _own_appointment(request: HttpRequest, ref: str) -> Appointment:
    appointment = selectors.participant_appointment(
        participant=request.participant,  # type: ignore[attr-defined]
        ref=ref,
    )
    if appointment is None:
        raise Http404
    return appointment


def _refusal(appointment: Appointment) -> str | None:
    """Why this session can no longer be moved or cancelled here, if it cannot (within the
    cut-off, or over): said at once, where the page listed times and a button and refused
    only what was sent. A missed or cancelled session is rebooked, which has no cut-off
    (but may be refused: replaced already, or of an earlier course)."""
    rebook = appointment.status in (Status.NO_SHOW, Status.CANCELLED)
    check = services.rebook_check if rebook else services.change_check
    try:
        check(appointment=appointment, actor=Actor.participant())
    except SchedulingError as exc:
        return _error_message(exc)
    return None


@participant_required
@require_http_methods(["GET", "POST"])
def reschedule(request: HttpRequest, ref: str) -> HttpResponseBase:
    appointment = _own_appointment(request, ref)
    refused = _refusal(appointment)
    form = RescheduleForm(_posted(request), initial={"scope": "one"})
    if request.method == "POST" and not refused and form.is_valid():
        try:
            _participant_move(appointment, form.cleaned_data)
        except SchedulingError as exc:
            form.add_error(None, _error_message(exc))
        else:
            messages.success(request, _("Your session has been moved."))
            return redirect("scheduling:mine")
    context = {
        **_zone_context(request),
        "appointment": appointment,
        "form": form,
        "refused": refused,
        "days": []
        if refused
        else _by_local_day(
            selectors.reschedule_options(appointment=appointment, by_staff=False),
            participant_zone(request),
        ),
        "rebook": appointment.status in (Status.NO_SHOW, Status.CANCELLED),
    }
    status = 400 if refused and request.method == "POST" else _status(form)
    return render(request, "scheduling/reschedule.html", context, status=status)


def _participant_move(appointment: Appointment, data: dict[str, Any]) -> None:
    actor = Actor.participant()
    if appointment.status in (Status.NO_SHOW, Status.CANCELLED):
        services.appointment_rebook(appointment=appointment, new_start=data["start"], actor=actor)
        return
    services.appointment_reschedule(
        appointment=appointment, new_start=data["start"], actor=actor, rest=data["scope"] == "rest"
    )


@participant_required
@require_http_methods(["GET", "POST"])
def cancel(request: HttpRequest, ref: str) -> HttpResponseBase:
    appointment = _own_appointment(request, ref)
    refused = _refusal(appointment)
    form = CancelForm(_posted(request), initial={"scope": "one"})
    if request.method == "POST" and not refused and form.is_valid():
        try:
            services.appointment_cancel(
                appointment=appointment,
                actor=Actor.participant(),
                rest=form.cleaned_data["scope"] == "rest",
            )
        except SchedulingError as exc:
            form.add_error(None, _error_message(exc))
        else:
            messages.success(request, _("The session has been cancelled."))
            return redirect("scheduling:mine")
    context = {
        **_zone_context(request),
        "appointment": appointment,
        "form": form,
        "refused": refused,
    }
    status = 400 if refused and request.method == "POST" else _status(form)
    return render(request, "scheduling/cancel.html", context, status=status)


def _ics_response(appointments: list[Appointment], tz: str, *, audience: str) -> HttpResponse:
    body = ics.calendar_bytes(appointments, tz, audience=audience)
    response = HttpResponse(body, content_type="text/calendar")
    response["Content-Disposition"] = 'attachment; filename="appointment.ics"'
    response["Cache-Control"] = "no-store"
    return response


@participant_required
@require_GET
def appointment_ics(request: HttpRequest, ref: str) -> HttpResponse:
    return _ics_response(
        [_own_appointment(request, ref)], participant_zone(request), audience="participant"
    )


@participant_required
@require_GET
def course_ics(request: HttpRequest, ref: str) -> HttpResponse:
    course = selectors.participant_course(
        participant=request.participant,  # type: ignore[attr-defined]
        ref=ref,
    )
    if course is None:
        raise Http404
    # Cancelled sessions too, marked so: left out, one stayed in the participant's calendar
    # when they imported the file again (an import adds and updates, it removes nothing).
    return _ics_response(
        list(course.appointments.all()), participant_zone(request), audience="participant"
    )


@participant_required
@require_POST
def notice_dismiss(request: HttpRequest, notice_id: int) -> HttpResponseBase:
    services.notice_dismiss(
        participant=request.participant,  # type: ignore[attr-defined]
        notice_id=notice_id,
    )
    return redirect("scheduling:mine")


# --- staff feed (no login: the secret URL is the credential) ---------------------------------


@require_GET
def staff_feed(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("key", "")[:100]
    profile = selectors.feed_owner(token_digest=services.feed_digest(token) if token else "")
    if profile is None:
        raise Http404
    now = clock.now()
    appointments = selectors.therapist_appointments(
        therapist=profile.staff, start=now - timedelta(days=14), end=now + timedelta(days=120)
    )
    return _ics_response(list(appointments), profile.time_zone, audience="staff")


def therapist_only(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    @wraps(view)
    @staff_verified_required
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.user.role != Role.THERAPIST:  # type: ignore[union-attr]
            if request.user.role == Role.COORDINATOR:  # type: ignore[union-attr]
                return redirect("scheduling:utilisation")
            return render(request, "403.html", status=403)
        return view(request, *args, **kwargs)

    return guarded
