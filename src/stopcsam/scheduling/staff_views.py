"""Staff pages: the therapist's week, the availability editor, one appointment, the
coordinator's utilisation. Thin: authorise by role and site, call a service, render."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from stopcsam.accounts.decorators import staff_verified_required
from stopcsam.accounts.models import Role, StaffUser
from stopcsam.core import clock
from stopcsam.scheduling import selectors, services, slots
from stopcsam.scheduling.exceptions import HandoverRefusedError, SchedulingError
from stopcsam.scheduling.forms import (
    BoosterForm,
    CancelForm,
    ExceptionForm,
    HandoverForm,
    LimitsForm,
    QualificationForm,
    RescheduleForm,
    WindowForm,
)
from stopcsam.scheduling.models import (
    Appointment,
    AvailabilityException,
    WeeklyAvailability,
)
from stopcsam.scheduling.services import Actor
from stopcsam.scheduling.views import _error_message, therapist_only


def _me(request: HttpRequest) -> StaffUser:
    return request.user  # type: ignore[return-value]


# --- the therapist's week -------------------------------------------------------------------


def _week_start(raw: str, tz: ZoneInfo) -> date:
    today = clock.now().astimezone(tz).date()
    try:
        day = date.fromisoformat(raw[:10]) if raw else today
    except ValueError:
        day = today
    if not 2000 <= day.year <= 2100:  # far dates would overflow the week arithmetic
        day = today
    return day - timedelta(days=day.weekday())


@therapist_only
@require_GET
def calendar(request: HttpRequest) -> HttpResponse:
    me = _me(request)
    profile = selectors.profile_for(me)
    tz = ZoneInfo(profile.time_zone)
    monday = _week_start(request.GET.get("week", ""), tz)
    start = slots.local_instant(monday, datetime.min.time(), tz)
    end = slots.local_instant(monday + timedelta(days=7), datetime.min.time(), tz)
    cal = selectors.calendar_for(profile, start, end)
    appointments = list(selectors.therapist_appointments(therapist=me, start=start, end=end))
    days = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        day_start = slots.local_instant(day, datetime.min.time(), tz)
        day_end = slots.local_instant(day + timedelta(days=1), datetime.min.time(), tz)
        days.append(
            {
                "date": day,
                "windows": slots.windows(cal, day_start, day_end),
                "appointments": [a for a in appointments if day_start <= a.start < day_end],
            }
        )
    context = {
        "profile": profile,
        "tz": profile.time_zone,
        "days": days,
        "previous": (monday - timedelta(days=7)).isoformat(),
        "next": (monday + timedelta(days=7)).isoformat(),
    }
    return render(request, "scheduling/staff_calendar.html", context)


# --- the availability editor ----------------------------------------------------------------


def _availability_page(request: HttpRequest, status: int = 200, **forms: Any) -> HttpResponse:
    me = _me(request)
    profile = selectors.profile_for(me)
    context = {
        "profile": profile,
        "windows": WeeklyAvailability.objects.filter(therapist=me),
        "exceptions": AvailabilityException.objects.filter(therapist=me, end__gte=clock.now()),
        "window_form": forms.get("window_form") or WindowForm(),
        "exception_form": forms.get("exception_form") or ExceptionForm(),
        "limits_form": forms.get("limits_form")
        or LimitsForm(
            initial={
                "time_zone": profile.time_zone,
                "max_per_day": profile.max_per_day,
                "max_per_week": profile.max_per_week,
                "max_caseload": profile.max_caseload,
                "buffer_minutes": profile.buffer_minutes,
            }
        ),
        "feed_url": forms.get("feed_url"),
        "tz": profile.time_zone,
    }
    return render(request, "scheduling/staff_availability.html", context, status=status)


@therapist_only
@require_GET
def availability(request: HttpRequest) -> HttpResponse:
    return _availability_page(request)


@therapist_only
@require_POST
def window_add(request: HttpRequest) -> HttpResponseBase:
    form = WindowForm(request.POST)
    if not form.is_valid():
        return _availability_page(request, 400, window_form=form)
    services.availability_window_add(therapist=_me(request), **form.cleaned_data)
    messages.success(request, _("Weekly hours saved."))
    return redirect("scheduling:availability")


@therapist_only
@require_POST
def window_delete(request: HttpRequest, window_id: int) -> HttpResponseBase:
    services.availability_window_delete(therapist=_me(request), window_id=window_id)
    messages.success(request, _("Weekly hours removed."))
    return redirect("scheduling:availability")


@therapist_only
@require_POST
def exception_add(request: HttpRequest) -> HttpResponseBase:
    form = ExceptionForm(request.POST, time_zone=selectors.profile_for(_me(request)).time_zone)
    if not form.is_valid():
        return _availability_page(request, 400, exception_form=form)
    start, end = form.instants()
    services.availability_exception_add(
        therapist=_me(request), kind=form.cleaned_data["kind"], start=start, end=end
    )
    messages.success(request, _("Exception saved."))
    return redirect("scheduling:availability")


@therapist_only
@require_POST
def exception_delete(request: HttpRequest, exception_id: int) -> HttpResponseBase:
    services.availability_exception_delete(therapist=_me(request), exception_id=exception_id)
    messages.success(request, _("Exception removed."))
    return redirect("scheduling:availability")


@therapist_only
@require_POST
def limits(request: HttpRequest) -> HttpResponseBase:
    form = LimitsForm(request.POST)
    if not form.is_valid():
        return _availability_page(request, 400, limits_form=form)
    services.therapist_profile_update(therapist=_me(request), **form.cleaned_data)
    messages.success(request, _("Settings saved."))
    return redirect("scheduling:availability")


@staff_verified_required
@require_POST
def feed_reset(request: HttpRequest) -> HttpResponse:
    token = services.feed_token_reset(staff=_me(request))
    url = request.build_absolute_uri(f"{reverse('scheduling:feed')}?key={token}")
    if _me(request).role != Role.THERAPIST:
        return render(request, "scheduling/staff_feed_shown.html", {"feed_url": url})
    return _availability_page(request, feed_url=url)


@staff_verified_required
@require_POST
def feed_revoke(request: HttpRequest) -> HttpResponseBase:
    services.feed_token_revoke(staff=_me(request))
    messages.success(request, _("The calendar link no longer works."))
    return redirect("scheduling:availability")


# --- one appointment ------------------------------------------------------------------------


def _staff_appointment(request: HttpRequest, ref: str) -> Appointment:
    appointment = selectors.staff_appointment(staff=_me(request), ref=ref)
    if appointment is None:
        raise Http404
    return appointment


def _appointment_page(
    request: HttpRequest, appointment: Appointment, status: int = 200, **forms: Any
) -> HttpResponse:
    by_staff = True
    options = selectors.reschedule_options(appointment=appointment, by_staff=by_staff)
    colleagues = selectors.colleagues_for_handover(course=appointment.course)
    context = {
        "appointment": appointment,
        "course": appointment.course,
        "sessions": appointment.course.appointments.all(),
        "history": appointment.changes.all(),
        "options": options,
        "reschedule_form": forms.get("reschedule_form") or RescheduleForm(),
        "cancel_form": forms.get("cancel_form") or CancelForm(),
        "booster_form": forms.get("booster_form") or BoosterForm(),
        "handover_form": forms.get("handover_form") or HandoverForm(colleagues=colleagues),
        "tz": selectors.profile_for(appointment.therapist).time_zone,
        "is_owner": appointment.therapist_id == _me(request).pk,
    }
    return render(request, "scheduling/staff_appointment.html", context, status=status)


@staff_verified_required
@require_GET
def appointment_detail(request: HttpRequest, ref: str) -> HttpResponse:
    return _appointment_page(request, _staff_appointment(request, ref))


def _back(appointment: Appointment) -> HttpResponseBase:
    return redirect("scheduling:staff_appointment", ref=appointment.ref)


@staff_verified_required
@require_POST
def appointment_reschedule(request: HttpRequest, ref: str) -> HttpResponseBase:
    appointment = _staff_appointment(request, ref)
    form = RescheduleForm(request.POST)
    if form.is_valid():
        try:
            services.appointment_reschedule(
                appointment=appointment,
                new_start=form.cleaned_data["start"],
                actor=Actor.of_staff(_me(request)),
                rest=form.cleaned_data["scope"] == "rest",
            )
        except SchedulingError as exc:
            form.add_error(None, _error_message(exc))
        else:
            messages.success(request, _("The session has been moved."))
            return _back(appointment)
    return _appointment_page(request, appointment, 400, reschedule_form=form)


@staff_verified_required
@require_POST
def appointment_cancel(request: HttpRequest, ref: str) -> HttpResponseBase:
    appointment = _staff_appointment(request, ref)
    form = CancelForm(request.POST)
    if form.is_valid():
        try:
            services.appointment_cancel(
                appointment=appointment,
                actor=Actor.of_staff(_me(request)),
                rest=form.cleaned_data["scope"] == "rest",
            )
        except SchedulingError as exc:
            form.add_error(None, _error_message(exc))
        else:
            messages.success(request, _("The session has been cancelled."))
            return _back(appointment)
    return _appointment_page(request, appointment, 400, cancel_form=form)


@staff_verified_required
@require_POST
def booster_add(request: HttpRequest, ref: str) -> HttpResponseBase:
    appointment = _staff_appointment(request, ref)
    form = BoosterForm(request.POST)
    if form.is_valid():
        try:
            services.course_add_booster(
                course=appointment.course,
                start=form.cleaned_data["start"],
                actor=Actor.of_staff(_me(request)),
            )
        except (SchedulingError, PermissionError) as exc:
            form.add_error(None, _message_for(exc))
        else:
            messages.success(request, _("Booster session added."))
            return _back(appointment)
    return _appointment_page(request, appointment, 400, booster_form=form)


def _message_for(exc: Exception) -> str:
    if isinstance(exc, HandoverRefusedError):
        return _("This colleague cannot take the course: check language, training and clashes.")
    if isinstance(exc, SchedulingError):
        return _error_message(exc)
    return _("You cannot change this course.")


@staff_verified_required
@require_POST
def handover(request: HttpRequest, ref: str) -> HttpResponseBase:
    appointment = _staff_appointment(request, ref)
    colleagues = selectors.colleagues_for_handover(course=appointment.course)
    form = HandoverForm(request.POST, colleagues=colleagues)
    if form.is_valid():
        colleague = next(c for c in colleagues if c.pk == form.cleaned_data["colleague"])
        try:
            services.course_hand_over(
                course=appointment.course,
                to_therapist=colleague,
                actor=Actor.of_staff(_me(request)),
            )
        except (SchedulingError, PermissionError) as exc:
            form.add_error(None, _message_for(exc))
        else:
            messages.success(request, _("The course has been handed over."))
            return redirect("scheduling:calendar")
    return _appointment_page(request, appointment, 400, handover_form=form)


# --- the coordinator ------------------------------------------------------------------------


def coordinator_only(view: Any) -> Any:
    @staff_verified_required
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if _me(request).role != Role.COORDINATOR:
            return render(request, "403.html", status=403)
        return view(request, *args, **kwargs)

    return guarded


@staff_verified_required
@require_GET
def utilisation(request: HttpRequest) -> HttpResponse:
    """The site's caseloads: for its coordinator, who also marks training, and for its
    supervisors, who see them (DESIGN §2; found by a review helper: a 403)."""
    me = _me(request)
    if me.role not in (Role.COORDINATOR, Role.SUPERVISOR):
        return render(request, "403.html", status=403)
    rows = selectors.site_utilisation(coordinator=me)
    return render(
        request,
        "scheduling/staff_utilisation.html",
        {"rows": rows, "may_mark_training": me.role == Role.COORDINATOR},
    )


@coordinator_only
@require_http_methods(["POST"])
def qualification(request: HttpRequest, staff_id: int) -> HttpResponseBase:
    therapist = StaffUser.objects.filter(
        pk=staff_id, role=Role.THERAPIST, site=_me(request).site
    ).first()
    if therapist is None:
        raise Http404
    form = QualificationForm(request.POST)
    form.is_valid()  # a single optional checkbox: absent means "not qualified"
    services.therapist_qualification_set(
        coordinator=_me(request),
        therapist=therapist,
        qualified=bool(form.cleaned_data.get("qualified")),
    )
    messages.success(request, _("Saved."))
    return redirect("scheduling:utilisation")
