"""Writes for scheduling. Each does the whole job: lock, check, write, history, audit, and
(after commit) tell the study how a session ended.

Locking: a booking locks the participant row, then the therapist's profile row, so two
bookings for one therapist run one after the other on PostgreSQL; SQLite's IMMEDIATE
transactions serialise all writers anyway. The unique constraint on (therapist, start) for
live appointments is the last line of defence. Lock order is always participant, then
therapists by ascending id, then courses by ascending id, then their sessions by start, so no
two services can deadlock. (A withdrawal locked a session and then its course while a
hand-over held the course and moved the session: PostgreSQL ended one with a deadlock.)
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from stopcsam.accounts.models import Participant, Role, StaffUser
from stopcsam.core import clock
from stopcsam.core.audit import audit_record
from stopcsam.core.signals import session_outcome
from stopcsam.scheduling import selectors, slots
from stopcsam.scheduling.exceptions import (
    AlreadyHasCourseError,
    BookingNotAllowedError,
    ChangeTooLateError,
    EarlierCourseError,
    HandoverRefusedError,
    InvalidAvailabilityError,
    NotChangeableError,
    ProposalInvalidError,
    SlotUnavailableError,
)
from stopcsam.scheduling.models import (
    Appointment,
    AppointmentChange,
    AvailabilityException,
    ChangeKind,
    Course,
    ExceptionKind,
    Kind,
    NoticeKind,
    ParticipantNotice,
    Status,
    TherapistProfile,
    WeeklyAvailability,
)


@dataclass(frozen=True)
class Actor:
    """Who makes a change: the participant themself, a member of staff, or the system."""

    role: str
    audit_ref: str
    staff: StaffUser | None = None

    @classmethod
    def participant(cls) -> Actor:
        return cls(role="participant", audit_ref="participant")

    @classmethod
    def of_staff(cls, staff: StaffUser) -> Actor:
        return cls(role=str(staff.role), audit_ref=staff.audit_ref, staff=staff)

    @classmethod
    def system(cls) -> Actor:
        return cls(role="system", audit_ref="system")

    @property
    def is_staff(self) -> bool:
        return self.staff is not None


# --- therapist settings ---------------------------------------------------------------------


def _require_zone(name: str) -> str:
    if name not in available_timezones():
        raise InvalidAvailabilityError
    return name


def therapist_profile_update(
    *,
    therapist: StaffUser,
    time_zone: str,
    max_per_day: int,
    max_per_week: int,
    max_caseload: int,
    buffer_minutes: int,
) -> TherapistProfile:
    with transaction.atomic():
        profile = selectors.profile_for(therapist)
        profile.time_zone = _require_zone(time_zone)
        profile.max_per_day, profile.max_per_week = max_per_day, max_per_week
        profile.max_caseload, profile.buffer_minutes = max_caseload, buffer_minutes
        profile.save(
            update_fields=[
                "time_zone",
                "max_per_day",
                "max_per_week",
                "max_caseload",
                "buffer_minutes",
            ]
        )
        audit_record(
            actor=therapist.audit_ref,
            action="scheduling.limits_changed",
            subject=therapist.audit_ref,
            detail={
                "per_day": max_per_day,
                "per_week": max_per_week,
                "caseload": max_caseload,
                "buffer": buffer_minutes,
            },
        )
    return profile


def therapist_qualification_set(
    *, coordinator: StaffUser, therapist: StaffUser, qualified: bool
) -> TherapistProfile:
    if coordinator.role != Role.COORDINATOR or coordinator.site_id != therapist.site_id:
        raise PermissionError
    with transaction.atomic():
        profile = selectors.profile_for(therapist)
        profile.qualified = qualified
        profile.save(update_fields=["qualified"])
        audit_record(
            actor=coordinator.audit_ref,
            action="scheduling.qualification_set",
            subject=therapist.audit_ref,
            detail={"qualified": qualified},
        )
    return profile


def availability_window_add(
    *, therapist: StaffUser, weekday: int, start_time: time, end_time: time
) -> WeeklyAvailability:
    if not 0 <= weekday <= 6 or not end_time > start_time:
        raise InvalidAvailabilityError
    with transaction.atomic():
        window = WeeklyAvailability.objects.create(
            therapist=therapist, weekday=weekday, start_time=start_time, end_time=end_time
        )
        audit_record(
            actor=therapist.audit_ref,
            action="scheduling.window_added",
            subject=therapist.audit_ref,
            detail={"weekday": weekday, "start": str(start_time), "end": str(end_time)},
        )
    return window


def availability_window_delete(*, therapist: StaffUser, window_id: int) -> None:
    with transaction.atomic():
        deleted, _ = WeeklyAvailability.objects.filter(pk=window_id, therapist=therapist).delete()
        if deleted:
            audit_record(
                actor=therapist.audit_ref,
                action="scheduling.window_removed",
                subject=therapist.audit_ref,
            )


def availability_exception_add(
    *, therapist: StaffUser, kind: str, start: datetime, end: datetime
) -> AvailabilityException:
    if end <= start or kind not in ExceptionKind.values:
        raise InvalidAvailabilityError
    with transaction.atomic():
        exception = AvailabilityException.objects.create(
            therapist=therapist, kind=kind, start=start, end=end
        )
        audit_record(
            actor=therapist.audit_ref,
            action="scheduling.exception_added",
            subject=therapist.audit_ref,
            detail={"kind": kind, "start": start.isoformat(), "end": end.isoformat()},
        )
    return exception


def availability_exception_delete(*, therapist: StaffUser, exception_id: int) -> None:
    with transaction.atomic():
        deleted, _ = AvailabilityException.objects.filter(
            pk=exception_id, therapist=therapist
        ).delete()
        if deleted:
            audit_record(
                actor=therapist.audit_ref,
                action="scheduling.exception_removed",
                subject=therapist.audit_ref,
            )


def feed_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def feed_token_reset(*, staff: StaffUser) -> str:
    """A new private feed URL token; the old one stops working. Returned once, never stored."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        profile = selectors.profile_for(staff)
        profile.feed_token_digest = feed_digest(token)
        profile.save(update_fields=["feed_token_digest"])
        audit_record(actor=staff.audit_ref, action="scheduling.feed_reset", subject=staff.audit_ref)
    return token


def feed_token_revoke(*, staff: StaffUser) -> None:
    with transaction.atomic():
        profile = selectors.profile_for(staff)
        profile.feed_token_digest = ""
        profile.save(update_fields=["feed_token_digest"])
        audit_record(
            actor=staff.audit_ref, action="scheduling.feed_revoked", subject=staff.audit_ref
        )


def feed_token_end(*, staff: StaffUser, reason: str) -> None:
    """End the account's feed link, if it has one, on a new password or a deactivation: the
    link is a credential of the account's, and survived both (a review finding)."""
    with transaction.atomic():
        ended = (
            TherapistProfile.objects.filter(staff=staff)
            .exclude(feed_token_digest="")
            .update(feed_token_digest="")
        )
        if ended:
            audit_record(
                actor="system",
                action="scheduling.feed_revoked",
                subject=staff.audit_ref,
                detail={"reason": reason},
            )


# --- booking --------------------------------------------------------------------------------


def _lock_participant(participant: Participant) -> None:
    list(Participant.objects.select_for_update().filter(pk=participant.pk).values_list("pk"))


def _lock_therapists(*ids: int) -> dict[int, TherapistProfile]:
    profiles = (
        TherapistProfile.objects.select_for_update(of=("self",))
        .select_related("staff", "staff__site")
        .filter(staff_id__in=sorted(ids))
        .order_by("staff_id")
    )
    return {p.staff_id: p for p in profiles}


def _lock_courses(*ids: int) -> None:
    """Before any of their sessions (see the module's lock order)."""
    list(
        Course.objects.select_for_update()
        .filter(pk__in=sorted(ids))
        .order_by("pk")
        .values_list("pk")
    )


def _history(
    appointment: Appointment,
    kind: str,
    actor: Actor,
    *,
    old_start: datetime | None = None,
    old_therapist_id: int | None = None,
) -> None:
    AppointmentChange.objects.create(
        appointment=appointment,
        at=clock.now(),
        kind=kind,
        by_role=actor.role,
        old_start=old_start,
        new_start=appointment.start,
        old_therapist_id=old_therapist_id,
        new_therapist_id=appointment.therapist_id,
    )


def _outcome_on_commit(appointment: Appointment, outcome: str) -> None:
    participant_id, ref = appointment.participant_id, appointment.ref
    transaction.on_commit(
        lambda: session_outcome.send(
            sender=Appointment, participant_id=participant_id, appointment_ref=ref, outcome=outcome
        )
    )


def course_book(*, participant: Participant, therapist_id: int, starts: list[datetime]) -> Course:
    """Book the whole course at the confirmed times, or nothing at all."""
    try:
        with transaction.atomic():
            _lock_participant(participant)
            if selectors.open_course(participant=participant):
                raise AlreadyHasCourseError
            # Asked under the lock: a "stop" from another tab committed before it is seen.
            left = selectors.sessions_left(participant)
            if not selectors.may_book(participant) or left < 1:
                raise BookingNotAllowedError
            if len(starts) != left:
                raise ProposalInvalidError
            profile = _lock_therapists(therapist_id).get(therapist_id)
            if profile is None or not selectors.is_bookable(profile, language=participant.language):
                raise ProposalInvalidError
            _check_room_in_caseload(profile)
            _check_plan(profile, starts)
            return _create_course(participant, profile.staff, starts)
    except IntegrityError as exc:  # the unique constraints caught a race we did not
        raise SlotUnavailableError from exc


def _check_room_in_caseload(profile: TherapistProfile) -> None:
    if selectors.caseloads([profile.staff_id]).get(profile.staff_id, 0) >= profile.max_caseload:
        raise SlotUnavailableError


def _check_plan(profile: TherapistProfile, starts: list[datetime]) -> None:
    """Each start is free, the first within the booking window, each later one within the
    allowed distance of the same local time that many weeks on."""
    not_before, latest = selectors.booking_window()
    if not not_before <= starts[0] <= latest:
        raise SlotUnavailableError
    length, within = selectors.session_length(), selectors.alternative_window()
    cal = selectors.calendar_for(profile, starts[0], starts[-1] + length)
    tz = ZoneInfo(profile.time_zone)
    for week, start in enumerate(starts):
        target = slots.same_local_time_weeks_later(starts[0], week, tz)
        if abs(start - target) > within or start < not_before:
            raise ProposalInvalidError
        if not slots.is_free(cal, start, length):
            raise SlotUnavailableError
        cal.add_booking(start, start + length)


def _create_course(
    participant: Participant, therapist: StaffUser, starts: list[datetime]
) -> Course:
    now = clock.now()
    course = Course.objects.create(
        participant=participant, therapist=therapist, language=participant.language, created_at=now
    )
    length = selectors.session_length()
    for start in starts:
        appointment = Appointment.objects.create(
            course=course,
            participant=participant,
            therapist=therapist,
            start=start,
            end=start + length,
        )
        _history(appointment, ChangeKind.BOOKED, Actor.participant())
    audit_record(
        actor="participant",
        action="scheduling.course_booked",
        subject=f"course:{course.pk}",
        detail={"therapist": therapist.audit_ref, "sessions": len(starts)},
    )
    return course


# --- changes --------------------------------------------------------------------------------


def _check_cutoff(appointment: Appointment, actor: Actor) -> None:
    if appointment.status != Status.BOOKED:
        raise NotChangeableError
    hours = (
        settings.SCHEDULING_STAFF_CHANGE_CUTOFF_HOURS
        if actor.is_staff
        else settings.SCHEDULING_CHANGE_CUTOFF_HOURS
    )
    if appointment.start - clock.now() < timedelta(hours=hours):
        raise ChangeTooLateError


def change_check(*, appointment: Appointment, actor: Actor) -> None:
    """Raise as a move or cancellation would, changing nothing: the pages say so before a
    time is picked, not after it is sent."""
    _check_cutoff(appointment, actor)


def _earliest_new_start(actor: Actor) -> datetime:
    if actor.is_staff:
        return clock.now() + timedelta(hours=settings.SCHEDULING_STAFF_CHANGE_CUTOFF_HOURS)
    return clock.now() + selectors.min_notice()


def _latest_new_start(actor: Actor) -> datetime:
    """Participants book within the horizon; staff may plan boosters and moves further out."""
    if actor.is_staff:
        return clock.now() + timedelta(days=365)
    return clock.now() + selectors.horizon()


def _remaining(appointment: Appointment) -> QuerySet[Appointment]:
    return Appointment.objects.filter(
        course_id=appointment.course_id, status=Status.BOOKED, start__gte=appointment.start
    ).order_by("start")


def _locked(appointment: Appointment) -> Appointment:
    return Appointment.objects.select_for_update().get(pk=appointment.pk)


def appointment_reschedule(
    *, appointment: Appointment, new_start: datetime, actor: Actor, rest: bool = False
) -> list[Appointment]:
    """Move one session, or this one and every later one (weekly at the new local time)."""
    try:
        with transaction.atomic():
            # The therapist as stored now, not as the caller read it: after a hand-over the
            # former therapist's calendar was checked, and the colleague's written.
            therapist_id = Appointment.objects.values_list("therapist_id", flat=True).get(
                pk=appointment.pk
            )
            profile = _lock_therapists(therapist_id)[therapist_id]
            appointment = _locked(appointment)
            if appointment.therapist_id != therapist_id:  # handed over between the two reads
                raise SlotUnavailableError
            _check_cutoff(appointment, actor)
            moving = _moving(appointment) if rest else [appointment]
            plan = _plan_moves(profile, moving, new_start, actor)
            return _apply_moves(moving, plan, actor)
    except IntegrityError as exc:
        raise SlotUnavailableError from exc


def _moving(appointment: Appointment) -> list[Appointment]:
    """This session and the later ones of the weekly course. A later booster keeps its own
    time (its calendar holds it): moved along, one planned weeks after the course was
    pulled into the week after its last session."""
    return [
        item
        for item in _remaining(appointment)
        if item.kind != Kind.BOOSTER or item.pk == appointment.pk
    ]


def _plan_moves(
    profile: TherapistProfile, moving: list[Appointment], new_start: datetime, actor: Actor
) -> list[datetime]:
    not_before = _earliest_new_start(actor)
    if not not_before <= new_start <= _latest_new_start(actor):
        raise SlotUnavailableError
    length = selectors.session_length()
    end = new_start + timedelta(weeks=len(moving)) + selectors.alternative_window()
    cal = selectors.calendar_for(profile, new_start, end, ignore=frozenset(a.pk for a in moving))
    plan = slots.plan_course(
        cal,
        new_start,
        len(moving),
        length,
        within=selectors.alternative_window(),
        not_before=not_before,
    )
    if plan is None:
        raise SlotUnavailableError
    return [p.start for p in plan]


def _apply_moves(
    moving: list[Appointment], starts: list[datetime], actor: Actor
) -> list[Appointment]:
    length = selectors.session_length()
    pairs = list(zip(moving, starts, strict=True))
    # Moving later: shift the last first, so no row ever lands on a start not yet vacated.
    if pairs and starts[0] > moving[0].start:
        pairs.reverse()
    for appointment, start in pairs:
        old_start = appointment.start
        appointment.start, appointment.end = start, start + length
        appointment.save(update_fields=["start", "end"])
        # A reminder was of the old time: kept, it said "soon" of a session moved a week on,
        # and (dismissed or not) it kept the sweep from reminding of the new time.
        ParticipantNotice.objects.filter(appointment=appointment, kind=NoticeKind.UPCOMING).delete()
        _history(appointment, ChangeKind.RESCHEDULED, actor, old_start=old_start)
        _notify_if_staff(appointment, actor)
    audit_record(
        actor=actor.audit_ref,
        action="scheduling.rescheduled",
        subject=f"course:{moving[0].course_id}",
        detail={"sessions": len(moving)},
    )
    return moving


def _notify_if_staff(appointment: Appointment, actor: Actor) -> None:
    """A change the participant did not make is shown to them at their next visit."""
    if actor.role == "participant":
        return
    ParticipantNotice.objects.filter(
        appointment=appointment, kind=NoticeKind.CHANGED, dismissed_at=None
    ).delete()
    ParticipantNotice.objects.create(
        participant_id=appointment.participant_id,
        appointment=appointment,
        kind=NoticeKind.CHANGED,
        created_at=clock.now(),
    )


def appointment_cancel(
    *, appointment: Appointment, actor: Actor, rest: bool = False
) -> list[Appointment]:
    """Cancel one session, or this one and every later one (which ends the course)."""
    with transaction.atomic():
        _lock_therapists(appointment.therapist_id)
        _lock_courses(appointment.course_id)  # as a withdrawal does; a session keeps its course
        appointment = _locked(appointment)
        _check_cutoff(appointment, actor)
        # The later ones locked too, and asked again under the lock: only still-booked ones.
        cancelled = list(_remaining(appointment).select_for_update()) if rest else [appointment]
        now = clock.now()
        for item in cancelled:
            _mark_cancelled(item, actor, now)
        _course_settle(appointment.course)
        audit_record(
            actor=actor.audit_ref,
            action="scheduling.cancelled",
            subject=f"course:{appointment.course_id}",
            detail={"sessions": len(cancelled), "rest": rest},
        )
    return cancelled


def appointments_cancel_on_withdrawal(*, participant_id: int) -> int:
    """The participant stopped taking part: every session still to come is cancelled,
    whatever the usual notice, so the therapist's time is freed, the chat lets nobody in and
    no reminder follows (found by a review helper: they all stayed booked). How many."""
    with transaction.atomic():
        # The participant's lock, as course_book and _add_session take it: a booking being
        # confirmed now either committed (and is cancelled here) or waits and sees the stop.
        list(Participant.objects.select_for_update().filter(pk=participant_id).values_list("pk"))
        # Then the open courses (a course with a booked session is open), then their sessions
        # by start: the order of a hand-over and a cancellation, so neither deadlocks with this.
        _lock_courses(
            *Course.objects.filter(participant_id=participant_id, ended_at=None).values_list(
                "pk", flat=True
            )
        )
        coming = list(
            Appointment.objects.select_for_update(of=("self",))
            .filter(participant_id=participant_id, status=Status.BOOKED, start__gt=clock.now())
            .select_related("course")
            .order_by("start")
        )
        now = clock.now()
        for item in coming:
            _mark_cancelled(item, Actor.participant(), now)
        for course in {item.course_id: item.course for item in coming}.values():
            _course_settle(course)
        if coming:
            audit_record(
                actor="participant",
                action="scheduling.cancelled_on_withdrawal",
                subject=f"participant:{participant_id}",
                detail={"sessions": len(coming)},
            )
    return len(coming)


def _mark_cancelled(item: Appointment, actor: Actor, now: datetime) -> None:
    """One session cancelled: its outcome, its history, a notice when the participant did
    not do it themself, and the study's count (after commit)."""
    item.status, item.outcome_at = Status.CANCELLED, now
    item.save(update_fields=["status", "outcome_at"])
    _history(item, ChangeKind.CANCELLED, actor)
    _notify_if_staff(item, actor)
    _outcome_on_commit(item, "cancelled")


def _course_settle(course: Course) -> None:
    """A course is open while it has a booked session, and ends when it has none."""
    has_booked = course.appointments.filter(status=Status.BOOKED).exists()
    ended_at = None if has_booked else clock.now()
    if (course.ended_at is None) != (ended_at is None):
        course.ended_at = ended_at
        course.save(update_fields=["ended_at"])


def appointment_rebook(
    *, appointment: Appointment, new_start: datetime, actor: Actor
) -> Appointment:
    """A replacement for a missed or cancelled session, with the same therapist: one per
    session, and only while the participant may book (not after they stopped taking part)."""
    rebook_check(appointment=appointment, actor=actor)
    return _add_session(
        appointment.course, new_start, actor, kind=Kind.REPLACEMENT, replaces=appointment
    )


def rebook_check(*, appointment: Appointment, actor: Actor) -> None:
    """Raise as a rebooking would, changing nothing: the page says so before a time is
    picked (see change_check)."""
    if appointment.status not in (Status.NO_SHOW, Status.CANCELLED):
        raise NotChangeableError
    if actor.staff is None and not selectors.may_book(appointment.participant):
        raise BookingNotAllowedError
    if Appointment.objects.filter(replaces=appointment).exists():
        raise NotChangeableError  # replaced already; the replacement itself may be replaced
    _check_not_superseded(appointment.course)


def _check_not_superseded(course: Course) -> None:
    """An ended course is not opened again while a newer one is open (one at a time): the
    missed session's reminder still offered it, and the refusal read "That time is no
    longer free"."""
    newer = Course.objects.filter(participant_id=course.participant_id, ended_at=None)
    if course.ended_at is not None and newer.exclude(pk=course.pk).exists():
        raise EarlierCourseError


def course_add_booster(*, course: Course, start: datetime, actor: Actor) -> Appointment:
    if actor.staff is None or actor.staff.pk != course.therapist_id:
        raise PermissionError
    return _add_session(course, start, actor, kind=Kind.BOOSTER)


def _add_session(
    course: Course,
    start: datetime,
    actor: Actor,
    *,
    kind: str,
    replaces: Appointment | None = None,
) -> Appointment:
    try:
        with transaction.atomic():
            # Whoever adds it: never a session for a participant who stopped taking part,
            # asked under their lock (a stop not yet committed is waited for).
            _lock_participant(course.participant)
            if not selectors.may_book(course.participant):
                raise BookingNotAllowedError
            # The course's therapist as stored now (see appointment_reschedule).
            therapist_id = Course.objects.values_list("therapist_id", flat=True).get(pk=course.pk)
            profile = _lock_therapists(therapist_id)[therapist_id]
            course = Course.objects.select_for_update().get(pk=course.pk)
            if course.therapist_id != therapist_id:  # handed over between the two reads
                raise SlotUnavailableError
            if course.ended_at is not None:
                # A session in an ended course opens it again: never beside a newer one,
                # and it counts towards the caseload as a new course does (counted under the
                # therapist's lock).
                _check_not_superseded(course)
                _check_room_in_caseload(profile)
            if not _earliest_new_start(actor) <= start <= _latest_new_start(actor):
                raise SlotUnavailableError
            cal = selectors.calendar_for(profile, start, start + selectors.session_length())
            if not slots.is_free(cal, start, selectors.session_length()):
                raise SlotUnavailableError
            appointment = Appointment.objects.create(
                course=course,
                participant_id=course.participant_id,
                therapist_id=course.therapist_id,
                start=start,
                end=start + selectors.session_length(),
                kind=kind,
                replaces=replaces,
            )
            _history(appointment, ChangeKind.BOOKED, actor)
            _notify_if_staff(appointment, actor)
            _course_settle(course)
            audit_record(
                actor=actor.audit_ref,
                action=f"scheduling.{kind}_added",
                subject=f"course:{course.pk}",
            )
            return appointment
    except IntegrityError as exc:
        raise SlotUnavailableError from exc


def course_hand_over(*, course: Course, to_therapist: StaffUser, actor: Actor) -> Course:
    """Give the rest of a course to a colleague who speaks its language; audited."""
    if actor.staff is None or actor.staff.pk == to_therapist.pk:
        raise HandoverRefusedError
    try:
        with transaction.atomic():
            profiles = _lock_therapists(course.therapist_id, to_therapist.pk)
            # The course before its sessions, as a withdrawal and a cancellation lock them.
            course = Course.objects.select_for_update().get(pk=course.pk)
            _check_handover_allowed(course, actor.staff, profiles.get(to_therapist.pk))
            _move_sessions(course, profiles[to_therapist.pk], actor)
            audit_record(
                actor=actor.audit_ref,
                action="scheduling.course_handed_over",
                subject=f"course:{course.pk}",
                detail={"from": f"staff:{course.therapist_id}", "to": to_therapist.audit_ref},
            )
            course.therapist = to_therapist
            course.save(update_fields=["therapist"])
            return course
    except IntegrityError as exc:
        raise HandoverRefusedError from exc


def _check_handover_allowed(
    course: Course, staff: StaffUser, target: TherapistProfile | None
) -> None:
    own = staff.pk == course.therapist_id
    site_lead = staff.role in (Role.SUPERVISOR, Role.COORDINATOR) and (
        course.therapist.site_id == staff.site_id
    )
    if not (own or site_lead):
        raise PermissionError
    if target is None or not selectors.is_bookable(target, language=course.language):
        raise HandoverRefusedError
    # The colleague's limits hold for a course handed over as for one booked: their caseload
    # (counted under the lock _lock_therapists took), and below, their sessions per day/week.
    if selectors.caseloads([target.staff_id]).get(target.staff_id, 0) >= target.max_caseload:
        raise HandoverRefusedError


def _move_sessions(course: Course, target: TherapistProfile, actor: Actor) -> None:
    upcoming = list(
        course.appointments.filter(status=Status.BOOKED, start__gte=clock.now()).order_by("start")
    )
    if not upcoming:
        return
    length = selectors.session_length()
    cal = selectors.calendar_for(target, upcoming[0].start, upcoming[-1].end)
    for appointment in upcoming:
        # The colleague takes the times as they are; only a clash with their own
        # sessions (or their limits) refuses the hand-over. Their template is not required.
        if cal.clashes(appointment.start, length) or not cal.has_room(appointment.start):
            raise HandoverRefusedError
        cal.add_booking(appointment.start, appointment.end)
        old = appointment.therapist_id
        appointment.therapist_id = target.staff_id
        appointment.save(update_fields=["therapist"])
        _history(appointment, ChangeKind.HANDED_OVER, actor, old_therapist_id=old)


# --- the chat app's hooks -------------------------------------------------------------------


def appointment_mark_joined(*, appointment_ref: str, role: str) -> Appointment | None:
    """Someone entered the session's waiting room. A joined participant is not a no-show."""
    field = "participant_joined_at" if role == "participant" else "therapist_joined_at"
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().filter(ref=appointment_ref).first()
        if appointment is None or getattr(appointment, field) is not None:
            return appointment
        setattr(appointment, field, clock.now())
        appointment.save(update_fields=[field])
        if role == "participant":
            _history(appointment, ChangeKind.JOINED, Actor.participant())
    return appointment


def appointment_mark_attended(*, appointment_ref: str) -> Appointment | None:
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().filter(ref=appointment_ref).first()
        if appointment is None or appointment.status != Status.BOOKED:
            return appointment
        _set_outcome(appointment, Status.ATTENDED, ChangeKind.ATTENDED)
    return appointment


def appointment_mark_not_held(*, appointment_ref: str) -> Appointment | None:
    """The participant came, but the session did not take place (the therapist never let
    them in): not attended, and not their no-show. It counts as cancelled by the service;
    the participant is told at their next visit and may book a new time."""
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().filter(ref=appointment_ref).first()
        if appointment is None or appointment.status != Status.BOOKED:
            return appointment
        _mark_cancelled(appointment, Actor.system(), clock.now())
        _course_settle(appointment.course)
        audit_record(
            actor="system",
            action="scheduling.not_held",
            subject=f"course:{appointment.course_id}",
        )
    return appointment


def _set_outcome(appointment: Appointment, status: str, change: str) -> None:
    appointment.status, appointment.outcome_at = status, clock.now()
    appointment.save(update_fields=["status", "outcome_at"])
    _history(appointment, change, Actor.system())
    _course_settle(appointment.course)
    _outcome_on_commit(appointment, "attended" if status == Status.ATTENDED else "no_show")
    audit_record(
        actor="system",
        action=f"scheduling.{status}",
        subject=f"course:{appointment.course_id}",
    )


# --- background work ------------------------------------------------------------------------


def no_shows_mark(*, now: datetime | None = None) -> int:
    """Mark every session nobody joined within the grace period as missed; offer a rebooking.

    Safe to run in several workers at once: each row is re-read under a lock and only a
    still-booked one changes.
    """
    now = now or clock.now()
    late = now - timedelta(minutes=settings.SCHEDULING_NO_SHOW_MINUTES)
    due = Appointment.objects.filter(
        status=Status.BOOKED, participant_joined_at=None, start__lte=late
    ).values_list("pk", flat=True)
    marked = 0
    for pk in list(due):
        with transaction.atomic():
            appointment = (
                Appointment.objects.select_for_update().filter(pk=pk, status=Status.BOOKED).first()
            )
            if appointment is None or appointment.participant_joined_at is not None:
                continue
            _set_outcome(appointment, Status.NO_SHOW, ChangeKind.NO_SHOW)
            _notice(appointment, NoticeKind.MISSED, now)
            marked += 1
    return marked + _attended_fallback(now)


# The chat tells what became of a session the participant joined (attended, or not held)
# when it ends, which can be after the booked end: a participant admitted late chats for the
# full length. Only a session the chat said nothing of this long after its end counts as
# attended without it.
ATTENDED_FALLBACK = timedelta(hours=2)


def _attended_fallback(now: datetime) -> int:
    """A session the participant joined counts as attended once it is long over, even if the
    chat never said so (for example after a crash), so adherence figures stay complete.
    Before, it counted at the booked end, ahead of the chat: a participant left in the
    waiting room was counted as attended."""
    refs = list(
        Appointment.objects.filter(
            status=Status.BOOKED,
            participant_joined_at__isnull=False,
            end__lte=now - ATTENDED_FALLBACK,
        ).values_list("ref", flat=True)
    )
    for ref in refs:
        appointment_mark_attended(appointment_ref=ref)
    return len(refs)


def _notice(appointment: Appointment, kind: str, now: datetime) -> bool:
    """Leave a notice of this kind unless one was left before (dismissed or not); whether it
    was left now. Another worker may leave the same one between the look and the write: the
    unique constraint refuses ours in its own savepoint, and the sweep goes on (the error
    stopped the whole minute's sweep)."""
    if ParticipantNotice.objects.filter(appointment=appointment, kind=kind).exists():
        return False
    try:
        with transaction.atomic():
            ParticipantNotice.objects.create(
                participant_id=appointment.participant_id,
                appointment=appointment,
                kind=kind,
                created_at=now,
            )
    except IntegrityError:
        return False
    return True


def reminders_create(*, now: datetime | None = None) -> int:
    """Leave an in-app reminder for each session in the next day (shown at the next visit)."""
    now = now or clock.now()
    soon = now + timedelta(hours=settings.SCHEDULING_REMINDER_HOURS)
    created = 0
    for appointment in Appointment.objects.filter(
        status=Status.BOOKED, start__gt=now, start__lte=soon
    ):
        created += _notice(appointment, NoticeKind.UPCOMING, now)
    return created


def notice_dismiss(*, participant: Participant, notice_id: int) -> None:
    ParticipantNotice.objects.filter(
        pk=notice_id, participant=participant, dismissed_at=None
    ).update(dismissed_at=clock.now())
