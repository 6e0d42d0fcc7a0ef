"""Pure slot arithmetic: no database, no clock. Everything in and out is aware UTC.

A therapist's bookable slots are laid on a grid that starts at each availability window and
steps by session length plus buffer. Windows come from the weekly template (wall-clock times
in the therapist's zone, so 17:00 stays 17:00 across DST), plus extra hours, minus blocked
times; a slot is free when no live booking is within the buffer and the day and week limits
still have room.
"""

from __future__ import annotations

import bisect
import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Interval = tuple[datetime, datetime]


@dataclass
class TherapistCalendar:
    therapist_id: int
    tz: ZoneInfo
    weekly: dict[int, list[tuple[time, time]]]
    extra: list[Interval] = field(default_factory=list)
    blocked: list[Interval] = field(default_factory=list)
    booked: list[Interval] = field(default_factory=list)
    buffer: timedelta = timedelta(minutes=10)
    max_per_day: int = 4
    max_per_week: int = 12

    def __post_init__(self) -> None:
        self.booked.sort()
        self._starts = [b[0] for b in self.booked]
        self.per_day: Counter[date] = Counter(self.local_date(b[0]) for b in self.booked)
        # Weeks from days: one ISO-calendar call per distinct day, not one per booking.
        self.per_week: Counter[tuple[int, int]] = Counter()
        for day, count in self.per_day.items():
            iso = day.isocalendar()
            self.per_week[(iso.year, iso.week)] += count

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    def local_week(self, instant: datetime) -> tuple[int, int]:
        iso = self.local_date(instant).isocalendar()
        return iso.year, iso.week

    def add_booking(self, start: datetime, end: datetime) -> None:
        """Count a booking made during planning, so later weeks see it."""
        index = bisect.bisect(self._starts, start)
        self._starts.insert(index, start)
        self.booked.insert(index, (start, end))
        self.per_day[self.local_date(start)] += 1
        self.per_week[self.local_week(start)] += 1

    def clashes(self, start: datetime, length: timedelta) -> bool:
        """True when a live booking lies within the buffer of [start, start + length).

        Bookings never overlap each other, so their ends are sorted like their starts and only
        the last booking that begins before our end (plus buffer) can reach into us.
        """
        index = bisect.bisect_left(self._starts, start + length + self.buffer)
        if index == 0:
            return False
        return self.booked[index - 1][1] + self.buffer > start

    def has_room(self, start: datetime) -> bool:
        return (
            self.per_day[self.local_date(start)] < self.max_per_day
            and self.per_week[self.local_week(start)] < self.max_per_week
        )


def wall_exists(day: date, wall: time, tz: ZoneInfo) -> bool:
    """False for a time the clocks skip (02:30 on the day Berlin goes forward)."""
    local = datetime.combine(day, wall, tzinfo=tz)
    return local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None)


@functools.lru_cache(maxsize=65536)
def local_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on a local date.

    A time the clocks repeat (going back) is its first occurrence (fold=0). A time they skip
    (going forward) is the instant of the jump, the first moment past that wall time: a
    window from 02:30 opens at 03:00 that day. Python alone puts it an hour late (03:30).
    """
    instant = datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)
    if wall_exists(day, wall, tz):
        return instant
    # In a gap, fold=0 reads the wall time with the offset before the jump (too late) and
    # fold=1 with the offset after it (too early): the jump lies between, found to the second.
    early = datetime.combine(day, wall, tzinfo=tz).replace(fold=1).astimezone(UTC)
    after = instant.astimezone(tz).utcoffset()
    while instant - early > timedelta(seconds=1):
        middle = early + (instant - early) / 2
        if middle.astimezone(tz).utcoffset() == after:
            instant = middle
        else:
            early = middle
    return instant.replace(microsecond=0)


def windows(cal: TherapistCalendar, start: datetime, end: datetime) -> list[Interval]:
    """Open windows overlapping [start, end): template + extra hours - blocked, merged."""
    first = (start.astimezone(cal.tz) - timedelta(days=1)).date()
    last = (end.astimezone(cal.tz) + timedelta(days=1)).date()
    raw: list[Interval] = []
    day = first
    while day <= last:
        for wall_start, wall_end in cal.weekly.get(day.weekday(), ()):
            opens = local_instant(day, wall_start, cal.tz)
            closes = local_instant(day, wall_end, cal.tz)
            if closes > opens and closes > start and opens < end:
                raw.append((opens, closes))
        day += timedelta(days=1)
    raw.extend(w for w in cal.extra if w[1] > start and w[0] < end)
    return subtract(merge(raw), merge(cal.blocked))


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for opens, closes in sorted(intervals):
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return merged


def subtract(base: list[Interval], holes: list[Interval]) -> list[Interval]:
    """Remove sorted, merged ``holes`` from sorted, merged ``base``."""
    if not holes:
        return base
    result: list[Interval] = []
    for opens, closes in base:
        cursor = opens
        for hole_start, hole_end in holes:
            if hole_end <= cursor or hole_start >= closes:
                continue
            if hole_start > cursor:
                result.append((cursor, hole_start))
            cursor = max(cursor, hole_end)
        if cursor < closes:
            result.append((cursor, closes))
    return result


@dataclass(frozen=True)
class Grid:
    """Slot starts laid on the open windows, with each slot's local day and ISO week."""

    starts: list[datetime]
    days: list[date]
    weeks: list[tuple[int, int]]


@functools.lru_cache(maxsize=4096)
def _cached_grid(
    tz: ZoneInfo,
    weekly: tuple[tuple[int, tuple[tuple[time, time], ...]], ...],
    extra: tuple[Interval, ...],
    blocked: tuple[Interval, ...],
    step: timedelta,
    length: timedelta,
    first_day: date,
    last_day: date,
) -> Grid:
    """Pure in its arguments, so cached: templates change rarely, bookings often."""
    cal = TherapistCalendar(
        therapist_id=0,
        tz=tz,
        weekly={day: list(walls) for day, walls in weekly},
        extra=list(extra),
        blocked=list(blocked),
    )
    start = local_instant(first_day, time(), tz)
    end = local_instant(last_day + timedelta(days=1), time(), tz)
    grid = Grid([], [], [])
    for opens, closes in windows(cal, start, end):
        slot = opens
        while slot + length <= closes:
            day = cal.local_date(slot)
            iso = day.isocalendar()
            grid.starts.append(slot)
            grid.days.append(day)
            grid.weeks.append((iso.year, iso.week))
            slot += step
    return grid


def grid_for(cal: TherapistCalendar, start: datetime, end: datetime, length: timedelta) -> Grid:
    weekly = tuple(sorted((d, tuple(sorted(w))) for d, w in cal.weekly.items()))
    return _cached_grid(
        cal.tz,
        weekly,
        tuple(sorted(cal.extra)),
        tuple(sorted(cal.blocked)),
        length + cal.buffer,
        length,
        cal.local_date(start) - timedelta(days=1),
        cal.local_date(end) + timedelta(days=1),
    )


def free_slots(
    cal: TherapistCalendar, start: datetime, end: datetime, length: timedelta
) -> list[datetime]:
    """Free slot starts in [start, end), in order.

    The hot loop of every booking page: the grid comes from a cache, and bookings knock out
    the few slots near them by bisection instead of every slot being tested.
    """
    grid = grid_for(cal, start, end, length)
    lo, hi = bisect.bisect_left(grid.starts, start), bisect.bisect_left(grid.starts, end)
    taken: set[int] = set()
    for b_start, b_end in cal.booked:
        first = bisect.bisect_right(grid.starts, b_start - length - cal.buffer, lo, hi)
        last = bisect.bisect_left(grid.starts, b_end + cal.buffer, lo, hi)
        taken.update(range(first, last))
    full_days = {d for d, n in cal.per_day.items() if n >= cal.max_per_day}
    full_weeks = {w for w, n in cal.per_week.items() if n >= cal.max_per_week}
    if not (taken or full_days or full_weeks):
        return grid.starts[lo:hi]
    return [
        grid.starts[i]
        for i in range(lo, hi)
        if i not in taken and grid.days[i] not in full_days and grid.weeks[i] not in full_weeks
    ]


def is_free(cal: TherapistCalendar, slot: datetime, length: timedelta) -> bool:
    return slot in free_slots(cal, slot, slot + timedelta(seconds=1), length)


def same_local_time_weeks_later(first: datetime, weeks: int, tz: ZoneInfo) -> datetime:
    """The same wall-clock time ``weeks`` weeks later in ``tz`` (DST-proof)."""
    local = first.astimezone(tz)
    return local_instant(local.date() + timedelta(weeks=weeks), local.time(), tz)


def nearest_free(
    cal: TherapistCalendar,
    target: datetime,
    length: timedelta,
    *,
    within: timedelta,
    not_before: datetime,
) -> datetime | None:
    """The free slot closest to ``target`` within +-``within``; the earlier one on a tie."""
    candidates = [
        slot
        for slot in free_slots(cal, target - within, target + within + timedelta(seconds=1), length)
        if slot >= not_before
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda slot: (abs(slot - target), slot))


@dataclass(frozen=True)
class PlannedSession:
    start: datetime
    target: datetime

    @property
    def moved(self) -> bool:
        return self.start != self.target


def plan_course(
    cal: TherapistCalendar,
    first: datetime,
    count: int,
    length: timedelta,
    *,
    within: timedelta,
    not_before: datetime,
) -> list[PlannedSession] | None:
    """Weekly sessions at the first one's local time, each moved by at most ``within`` when
    its week is taken; None when some week has nothing free. ``cal`` gains the bookings."""
    if first < not_before or not is_free(cal, first, length):
        return None
    plan = [PlannedSession(first, first)]
    cal.add_booking(first, first + length)
    for week in range(1, count):
        target = same_local_time_weeks_later(first, week, cal.tz)
        if is_free(cal, target, length):
            chosen: datetime | None = target
        else:
            chosen = nearest_free(cal, target, length, within=within, not_before=not_before)
        if chosen is None:
            return None
        plan.append(PlannedSession(chosen, target))
        cal.add_booking(chosen, chosen + length)
    return plan
