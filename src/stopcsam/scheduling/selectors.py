"""Reads for scheduling, each with its access rule. Times stay UTC until a template shows them."""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils.module_loading import import_string

from stopcsam.accounts.models import Participant, Role, StaffUser
from stopcsam.core import clock
from stopcsam.scheduling import slots
from stopcsam.scheduling.models import (
    Appointment,
    AvailabilityException,
    Course,
    ExceptionKind,
    Kind,
    NoticeKind,
    ParticipantNotice,
    Status,
    TherapistProfile,
    WeeklyAvailability,
)


def _whole_weeks(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Widen [start, end) to cover the whole local ISO weeks of start and end in any zone, so
    the day and week limits count every session of those weeks. A local week begins at most
    seven days (plus an hour of DST) before ``start`` and ends as long after ``end``; the UTC
    weekday says nothing of the local one (Sunday 21:00 in Sao Paulo is a UTC Monday)."""
    return start - timedelta(days=8), end + timedelta(days=8)


def session_length() -> timedelta:
    return timedelta(minutes=settings.SCHEDULING_SESSION_MINUTES)


def min_notice() -> timedelta:
    return timedelta(hours=settings.SCHEDULING_MIN_NOTICE_HOURS)


def horizon() -> timedelta:
    return timedelta(days=settings.SCHEDULING_HORIZON_DAYS)


def alternative_window() -> timedelta:
    return timedelta(days=settings.SCHEDULING_ALTERNATIVE_DAYS)


def may_book(participant: Participant) -> bool:
    hook = getattr(settings, "STOPCSAM_MAY_BOOK", None)
    return True if not hook else bool(import_string(hook)(participant))


def course_length(participant: Participant) -> int:
    hook = getattr(settings, "STOPCSAM_COURSE_LENGTH", None)
    return 4 if not hook else int(import_string(hook)(participant))


def sessions_left(participant: Participant) -> int:
    """The course length less the sessions already attended in earlier courses (boosters
    aside): a course that ended, attended or cancelled, is not followed by a whole new one."""
    attended = (
        Appointment.objects.filter(participant=participant, status=Status.ATTENDED)
        .exclude(kind=Kind.BOOSTER)
        .count()
    )
    return max(course_length(participant) - attended, 0)


def profile_for(staff: StaffUser) -> TherapistProfile:
    profile, _created = TherapistProfile.objects.get_or_create(staff=staff)
    return profile


# --- who can be booked ----------------------------------------------------------------------


def bookable_therapists(*, language: str) -> list[TherapistProfile]:
    """Active, qualified therapists who speak the language at a site that serves it."""
    # Languages are JSON lists; SQLite has no JSON "contains", so the last filter is Python.
    profiles = TherapistProfile.objects.select_related("staff", "staff__site").filter(
        qualified=True, staff__is_active=True, staff__role=Role.THERAPIST
    )
    return [p for p in profiles if is_bookable(p, language=language)]


@dataclass(frozen=True)
class _ProfileRow:
    """The few profile fields slot computation reads, without building model instances."""

    staff_id: int
    time_zone: str
    buffer_minutes: int
    max_per_day: int
    max_per_week: int
    max_caseload: int


def _bookable_rows(*, language: str) -> list[Any]:
    rows = TherapistProfile.objects.filter(
        qualified=True, staff__is_active=True, staff__role=Role.THERAPIST
    ).values_list(
        "staff_id",
        "time_zone",
        "buffer_minutes",
        "max_per_day",
        "max_per_week",
        "max_caseload",
        "staff__languages",
        "staff__site__languages",
    )
    return [_ProfileRow(*row[:6]) for row in rows if language in row[6] and language in row[7]]


def _for_therapists(ids: list[int]) -> dict[str, list[int]]:
    """A short id list goes into SQL; a long one is filtered in Python, because building an
    IN clause of hundreds of ids costs more than reading the few extra rows."""
    return {"therapist_id__in": ids} if len(ids) <= 20 else {}


def caseloads(therapist_ids: list[int]) -> dict[int, int]:
    rows = (
        Course.objects.filter(ended_at=None, **_for_therapists(therapist_ids))
        .values_list("therapist_id")
        .annotate(n=Count("id"))
    )
    wanted = set(therapist_ids)
    return {therapist_id: n for therapist_id, n in rows if therapist_id in wanted}


def is_bookable(profile: TherapistProfile, *, language: str) -> bool:
    staff = profile.staff
    return (
        profile.qualified
        and staff.is_active
        and staff.role == Role.THERAPIST
        and language in staff.languages
        and language in staff.site.languages
    )


# --- calendars ------------------------------------------------------------------------------


def calendars(
    profiles: list[Any],
    start: datetime,
    end: datetime,
    *,
    ignore: frozenset[int] = frozenset(),
) -> dict[int, slots.TherapistCalendar]:
    """Each therapist's calendar around [start, end) in four queries, whatever their number.

    ``ignore`` leaves out appointments (by pk) that are about to move.
    """
    ids = [p.staff_id for p in profiles]
    weekly: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for row in WeeklyAvailability.objects.filter(**_for_therapists(ids)).values_list(
        "therapist_id", "weekday", "start_time", "end_time"
    ):
        weekly[row[0]][row[1]].append((row[2], row[3]))
    wide_start, wide_end = _whole_weeks(start, end)
    extra, blocked = _exceptions(ids, wide_start, wide_end)
    booked: dict[int, list[slots.Interval]] = defaultdict(list)
    length = session_length()  # every session has this length, so "end" is not read back
    for therapist_id, b_start in (
        Appointment.objects.filter(
            start__lt=wide_end, start__gt=wide_start - length, **_for_therapists(ids)
        )
        .exclude(status=Status.CANCELLED)
        .exclude(pk__in=ignore)
        .values_list("therapist_id", "start")
    ):
        booked[therapist_id].append((b_start, b_start + length))
    return {
        p.staff_id: slots.TherapistCalendar(
            therapist_id=p.staff_id,
            tz=ZoneInfo(p.time_zone),
            weekly=dict(weekly[p.staff_id]),
            extra=extra[p.staff_id],
            blocked=blocked[p.staff_id],
            booked=booked[p.staff_id],
            buffer=timedelta(minutes=p.buffer_minutes),
            max_per_day=p.max_per_day,
            max_per_week=p.max_per_week,
        )
        for p in profiles
    }


def _exceptions(
    ids: list[int], start: datetime, end: datetime
) -> tuple[dict[int, list[slots.Interval]], dict[int, list[slots.Interval]]]:
    extra: dict[int, list[slots.Interval]] = defaultdict(list)
    blocked: dict[int, list[slots.Interval]] = defaultdict(list)
    for therapist_id, kind, exc_start, exc_end in AvailabilityException.objects.filter(
        start__lt=end, end__gt=start, **_for_therapists(ids)
    ).values_list("therapist_id", "kind", "start", "end"):
        (extra if kind == ExceptionKind.EXTRA else blocked)[therapist_id].append(
            (exc_start, exc_end)
        )
    return extra, blocked


def calendar_for(
    profile: TherapistProfile,
    start: datetime,
    end: datetime,
    *,
    ignore: frozenset[int] = frozenset(),
) -> slots.TherapistCalendar:
    return calendars([profile], start, end, ignore=ignore)[profile.staff_id]


# --- what a participant may pick --------------------------------------------------------------


def booking_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or clock.now()
    return now + min_notice(), now + horizon()


def free_starts(*, language: str, now: datetime | None = None) -> dict[datetime, list[int]]:
    """Every bookable first-session start in the window, with the therapists free then."""
    start, end = booking_window(now)
    profiles = _with_room(_bookable_rows(language=language))
    result: dict[datetime, list[int]] = defaultdict(list)
    for therapist_id, cal in calendars(profiles, start, end).items():
        for slot in slots.free_slots(cal, start, end, session_length()):
            result[slot].append(therapist_id)
    return dict(sorted(result.items()))


@contextmanager
def _without_gc_pauses() -> Iterator[None]:
    """Hold the cyclic garbage collector for one slot computation.

    It allocates thousands of short-lived tuples that reference counting frees at the end
    anyway; meanwhile they trip collections that walk Django's whole heap, which was most of
    the p99 in bench/scheduling.py. The collector is re-enabled even on error, and only by
    the caller that found it enabled.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def free_start_times(*, language: str, now: datetime | None = None) -> list[datetime]:
    """The distinct first-session starts a participant can pick, in order (the booking page).

    Which therapist gets the course is decided when a time is chosen (``course_proposal``),
    so only the union of everyone's free slots is built here: one C-level set update each.
    """
    start, end = booking_window(now)
    with _without_gc_pauses():
        profiles = _with_room(_bookable_rows(language=language))
        times: set[datetime] = set()
        for cal in calendars(profiles, start, end).values():
            times.update(slots.free_slots(cal, start, end, session_length()))
        return sorted(times)


def _with_room(profiles: list[Any]) -> list[Any]:
    loads = caseloads([p.staff_id for p in profiles])
    return [p for p in profiles if loads.get(p.staff_id, 0) < p.max_caseload]


@dataclass(frozen=True)
class Proposal:
    therapist: StaffUser
    sessions: list[slots.PlannedSession]

    @property
    def moved(self) -> int:
        return sum(1 for s in self.sessions if s.moved)


def course_proposal(*, participant: Participant, first: datetime) -> Proposal | None:
    """The best whole course starting at ``first``: fewest moved weeks, then lightest load."""
    not_before, latest = booking_window()
    if not not_before <= first <= latest:
        return None
    count = sessions_left(participant)
    if count < 1:
        return None
    profiles = _with_room(bookable_therapists(language=participant.language))
    end = first + timedelta(weeks=count) + alternative_window()
    loads = caseloads([p.staff_id for p in profiles])
    best: tuple[int, int, int] | None = None
    chosen: Proposal | None = None
    with _without_gc_pauses():
        cals = calendars(profiles, first, end)
        for profile in profiles:
            plan = slots.plan_course(
                cals[profile.staff_id],
                first,
                count,
                session_length(),
                within=alternative_window(),
                not_before=not_before,
            )
            if plan is None:
                continue
            proposal = Proposal(profile.staff, plan)
            rank = (proposal.moved, loads.get(profile.staff_id, 0), profile.staff_id)
            if best is None or rank < best:
                best, chosen = rank, proposal
    return chosen


def therapist_free_starts(
    *, therapist: StaffUser, start: datetime, end: datetime, ignore: frozenset[int] = frozenset()
) -> list[datetime]:
    profile = profile_for(therapist)
    cal = calendar_for(profile, start, end, ignore=ignore)
    return slots.free_slots(cal, start, end, session_length())


def reschedule_options(*, appointment: Appointment, by_staff: bool) -> list[datetime]:
    """Free times of the same therapist that this session could move to. A missed or
    cancelled one is replaced with the course's therapist (who may have taken it over since)."""
    now = clock.now()
    staff_notice = timedelta(hours=settings.SCHEDULING_STAFF_CHANGE_CUTOFF_HOURS)
    earliest = now + (staff_notice if by_staff else min_notice())
    rebook = appointment.status in (Status.NO_SHOW, Status.CANCELLED)
    therapist = appointment.course.therapist if rebook else appointment.therapist
    if rebook and appointment.course.ended_at is not None:
        # A new session opens the course again: none is offered while the caseload is full.
        profile = profile_for(therapist)
        if caseloads([therapist.pk]).get(therapist.pk, 0) >= profile.max_caseload:
            return []
    return therapist_free_starts(
        therapist=therapist,
        start=earliest,
        end=now + horizon(),
        ignore=frozenset({appointment.pk}),
    )


# --- a participant's own sessions -----------------------------------------------------------


def open_course(*, participant: Participant) -> Course | None:
    return (
        Course.objects.filter(participant=participant, ended_at=None)
        .select_related("therapist")
        .first()
    )


def participant_courses(*, participant: Participant) -> QuerySet[Course]:
    return (
        Course.objects.filter(participant=participant)
        .select_related("therapist")
        .prefetch_related("appointments")
    )


def participant_appointment(*, participant: Participant, ref: str) -> Appointment | None:
    """Only the participant's own appointment; another's looks exactly like a missing one."""
    return (
        Appointment.objects.filter(participant=participant, ref=ref[:32])
        .select_related("course", "therapist")
        .first()
    )


def participant_course(*, participant: Participant, ref: str) -> Course | None:
    return Course.objects.filter(participant=participant, ref=ref[:32]).first()


def open_notices(*, participant: Participant) -> QuerySet[ParticipantNotice]:
    """Notices not dismissed, but never a reminder of a session that has begun or is no
    longer booked (found by a review helper: "your next session is soon" stayed a week after
    it took place, and after the participant stopped taking part)."""
    stale_reminder = Q(kind=NoticeKind.UPCOMING) & (
        Q(appointment__start__lte=clock.now()) | ~Q(appointment__status=Status.BOOKED)
    )
    # Nor the offer to book a new time for a missed session once one is booked, or once the
    # participant may not book (they stopped): it stayed, and its link led to "This session
    # cannot be changed any more" or "Booking is not open for you".
    stale_offer = Q(kind=NoticeKind.MISSED)
    if may_book(participant):
        stale_offer &= Q(appointment__replacement__isnull=False)
    return (
        ParticipantNotice.objects.filter(participant=participant, dismissed_at=None)
        .exclude(stale_reminder)
        .exclude(stale_offer)
        .select_related("appointment")
    )


# --- staff ----------------------------------------------------------------------------------


def staff_appointment(*, staff: StaffUser, ref: str) -> Appointment | None:
    """A therapist sees their own appointments; supervisors and coordinators their site's."""
    appointments = Appointment.objects.filter(ref=ref[:32]).select_related(
        "course", "therapist", "therapist__site"
    )
    if staff.role == Role.THERAPIST:
        return appointments.filter(therapist=staff).first()
    if staff.role in (Role.SUPERVISOR, Role.COORDINATOR):
        return appointments.filter(therapist__site=staff.site).first()
    return None


def therapist_appointments(
    *, therapist: StaffUser, start: datetime, end: datetime
) -> QuerySet[Appointment]:
    return Appointment.objects.filter(therapist=therapist, start__lt=end, end__gt=start).exclude(
        status=Status.CANCELLED
    )


def colleagues_for_handover(*, course: Course) -> list[StaffUser]:
    """Qualified, active therapists who speak the course's language (any site serving it)."""
    return [
        p.staff
        for p in bookable_therapists(language=course.language)
        if p.staff_id != course.therapist_id
    ]


def feed_owner(*, token_digest: str) -> TherapistProfile | None:
    if not token_digest:
        return None
    return (
        TherapistProfile.objects.select_related("staff")
        .filter(feed_token_digest=token_digest, staff__is_active=True)
        .first()
    )


@dataclass(frozen=True)
class Utilisation:
    therapist: StaffUser
    profile: TherapistProfile
    offered_slots: int
    booked: int
    attended: int
    no_show: int
    cancelled: int
    caseload: int

    @property
    def percent(self) -> int:
        total = self.offered_slots + self.booked
        return round(100 * self.booked / total) if total else 0


def site_utilisation(*, coordinator: StaffUser, weeks: int = 4) -> list[Utilisation]:
    """Per therapist of the coordinator's site: the next ``weeks`` weeks and all-time outcomes."""
    now = clock.now()
    end = now + timedelta(weeks=weeks)
    therapists = list(
        StaffUser.objects.filter(site=coordinator.site, role=Role.THERAPIST).order_by("username")
    )
    profiles = [profile_for(t) for t in therapists]
    cals = calendars(profiles, now, end)
    outcomes = _outcome_counts([t.pk for t in therapists])
    loads = caseloads([t.pk for t in therapists])
    return [
        Utilisation(
            therapist=t,
            profile=p,
            offered_slots=len(slots.free_slots(cals[t.pk], now, end, session_length())),
            booked=therapist_appointments(therapist=t, start=now, end=end)
            .filter(status=Status.BOOKED)
            .count(),
            attended=outcomes[t.pk][Status.ATTENDED],
            no_show=outcomes[t.pk][Status.NO_SHOW],
            cancelled=outcomes[t.pk][Status.CANCELLED],
            caseload=loads.get(t.pk, 0),
        )
        for t, p in zip(therapists, profiles, strict=True)
    ]


def _outcome_counts(ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = (
        Appointment.objects.filter(therapist_id__in=ids)
        .filter(Q(status__in=[Status.ATTENDED, Status.NO_SHOW, Status.CANCELLED]))
        .values("therapist_id", "status")
        .annotate(n=Count("id"))
    )
    for row in rows:
        counts[row["therapist_id"]][row["status"]] = row["n"]
    return counts


# --- the chat app's appointment source (wired in settings; chat never imports scheduling) ---


def _for_chat(appointment: Appointment, live: list[Appointment]) -> dict[str, Any]:
    return {
        "appointment_ref": appointment.ref,
        "participant_id": appointment.participant_id,
        "therapist_id": appointment.therapist_id,
        "starts_at": appointment.start,
        "ends_at": appointment.end,
        "number": next((k for k, a in enumerate(live, 1) if a.pk == appointment.pk), 1),
        "of": len(live),
        "language": appointment.course.language,
        # Marked missed (nobody came within the no-show time): the chat lets nobody in.
        "missed": appointment.status == Status.NO_SHOW,
    }


def _courses_live(course_ids: set[int]) -> dict[int, list[Appointment]]:
    """Each course's sessions that still count (not cancelled), in order: session k of n."""
    by_course: dict[int, list[Appointment]] = defaultdict(list)
    rows = Appointment.objects.filter(course_id__in=course_ids).exclude(status=Status.CANCELLED)
    for row in rows.order_by("start"):
        by_course[row.course_id].append(row)
    return by_course


def chat_appointment(*, appointment_ref: str) -> dict[str, Any] | None:
    """A booked session as chat sees it; None once cancelled or unknown."""
    appointment = (
        Appointment.objects.select_related("course")
        .filter(ref=appointment_ref)
        .exclude(status=Status.CANCELLED)
        .first()
    )
    if appointment is None:
        return None
    return _for_chat(appointment, _courses_live({appointment.course_id})[appointment.course_id])


def chat_appointments(
    *, since: datetime, participant_id: int | None = None, therapist_id: int | None = None
) -> list[dict[str, Any]]:
    """Sessions not yet over for a participant or a therapist (one of them is given)."""
    rows = Appointment.objects.select_related("course").filter(end__gte=since)
    rows = rows.exclude(status=Status.CANCELLED)
    if participant_id is not None:
        rows = rows.filter(participant_id=participant_id)
    if therapist_id is not None:
        rows = rows.filter(therapist_id=therapist_id)
    found = list(rows.order_by("start")[:50])
    courses = _courses_live({row.course_id for row in found})
    return [_for_chat(row, courses[row.course_id]) for row in found]
