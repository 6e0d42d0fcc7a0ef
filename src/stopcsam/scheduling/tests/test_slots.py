"""Slot arithmetic: DST-proof weekly templates, exceptions, buffers and limits."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from stopcsam.scheduling import slots

LENGTH = timedelta(minutes=50)


def _cal(tz: str = "Europe/Berlin", **kwargs: object) -> slots.TherapistCalendar:
    weekly = kwargs.pop("weekly", {1: [(time(17), time(20))]})
    return slots.TherapistCalendar(therapist_id=1, tz=ZoneInfo(tz), weekly=weekly, **kwargs)  # type: ignore[arg-type]


def _local(instant: datetime, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).strftime("%a %H:%M")


def test_it_lays_slots_on_the_window_with_the_buffer() -> None:
    cal = _cal()
    found = slots.free_slots(
        cal, datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC), LENGTH
    )
    # 17:00-20:00 Berlin (UTC+1): 50 min + 10 min buffer gives 17:00, 18:00, 19:00.
    assert [_local(s, "Europe/Berlin") for s in found] == ["Tue 17:00", "Tue 18:00", "Tue 19:00"]
    assert found[0] == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)


def test_a_weekly_time_stays_local_across_each_sites_dst_change() -> None:
    # Last Sunday of March 2026 is the 29th: Berlin, Prague and Lisbon all move an hour.
    for tz in ("Europe/Berlin", "Europe/Prague", "Europe/Lisbon"):
        cal = _cal(tz)
        found = slots.free_slots(
            cal, datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 4, 6, tzinfo=UTC), LENGTH
        )
        firsts = [s for s in found if _local(s, tz) == "Tue 17:00"]
        assert len(firsts) == 2
        assert firsts[1] - firsts[0] == timedelta(days=7) - timedelta(hours=1), tz


def test_autumn_change_lengthens_the_week_by_an_hour() -> None:
    cal = _cal("Europe/Lisbon")
    found = slots.free_slots(
        cal, datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC), LENGTH
    )
    firsts = [s for s in found if _local(s, "Europe/Lisbon") == "Tue 17:00"]
    assert firsts[1] - firsts[0] == timedelta(days=7, hours=1)


def test_a_window_inside_the_skipped_hour_offers_nothing_that_day() -> None:
    cal = _cal(weekly={6: [(time(2), time(3))]})
    found = slots.free_slots(
        cal, datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC), LENGTH
    )
    assert found == []


def test_extra_hours_add_and_holidays_remove_time() -> None:
    extra = (datetime(2026, 3, 4, 9, tzinfo=UTC), datetime(2026, 3, 4, 10, tzinfo=UTC))
    holiday = (datetime(2026, 3, 3, 0, tzinfo=UTC), datetime(2026, 3, 4, 0, tzinfo=UTC))
    cal = _cal(extra=[extra], blocked=[holiday])
    found = slots.free_slots(
        cal, datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC), LENGTH
    )
    assert found == [datetime(2026, 3, 4, 9, tzinfo=UTC)]


def test_a_booking_takes_its_slot_and_the_buffer_around_it() -> None:
    booked = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)  # 18:00 Berlin
    cal = _cal(booked=[(booked, booked + LENGTH)], buffer=timedelta(minutes=10))
    found = slots.free_slots(
        cal, datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC), LENGTH
    )
    assert [_local(s, "Europe/Berlin") for s in found] == ["Tue 17:00", "Tue 19:00"]
    cal = _cal(booked=[(booked, booked + LENGTH)], buffer=timedelta(minutes=15))
    found = slots.free_slots(
        cal, datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC), LENGTH
    )
    # A 65-minute grid: 17:00 and 18:05 come too close to the booking; 19:10 is clear.
    assert [_local(s, "Europe/Berlin") for s in found] == ["Tue 19:10"]


def test_day_and_week_limits_close_the_remaining_slots() -> None:
    weekly = {d: [(time(9), time(12))] for d in range(5)}
    first = datetime(2026, 3, 2, 8, tzinfo=UTC)
    cal = _cal(weekly=weekly, booked=[(first, first + LENGTH)], max_per_day=1, max_per_week=3)
    found = slots.free_slots(
        cal, datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 7, tzinfo=UTC), LENGTH
    )
    assert {s.date() for s in found} == {date(2026, 3, d) for d in (3, 4, 5, 6)}
    cal.add_booking(found[0], found[0] + LENGTH)
    cal.add_booking(datetime(2026, 3, 4, 8, tzinfo=UTC), datetime(2026, 3, 4, 8, 50, tzinfo=UTC))
    assert (
        slots.free_slots(
            cal, datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 7, tzinfo=UTC), LENGTH
        )
        == []
    )


def test_a_course_moves_a_taken_week_to_the_nearest_free_time() -> None:
    weekly = {1: [(time(17), time(18))], 3: [(time(17), time(18))]}
    first = datetime(2026, 3, 3, 16, tzinfo=UTC)
    taken = first + timedelta(weeks=1)
    cal = _cal(weekly=weekly, booked=[(taken, taken + LENGTH)])
    plan = slots.plan_course(
        cal, first, 3, LENGTH, within=timedelta(days=2), not_before=first - timedelta(days=1)
    )
    assert plan is not None
    assert [p.moved for p in plan] == [False, True, False]
    assert plan[1].start == taken + timedelta(days=2)  # Thursday, two days later


def test_a_course_is_refused_when_no_time_is_within_two_days() -> None:
    first = datetime(2026, 3, 3, 16, tzinfo=UTC)
    taken = first + timedelta(weeks=1)
    cal = _cal(weekly={1: [(time(17), time(18))]}, booked=[(taken, taken + LENGTH)])
    assert (
        slots.plan_course(cal, first, 4, LENGTH, within=timedelta(days=2), not_before=first) is None
    )


zones = st.sampled_from(["Europe/Berlin", "Europe/Lisbon", "Europe/Prague", "America/New_York"])
windows = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 22), st.integers(1, 6)), min_size=1, max_size=6
)


@settings(max_examples=60, deadline=None)
@given(
    tz=zones,
    raw=windows,
    day=st.dates(date(2026, 1, 1), date(2027, 12, 1)),
    buffer=st.integers(0, 30),
    bookings=st.lists(st.integers(0, 14 * 24 * 4), max_size=12),
)
def test_free_slots_keep_every_invariant(
    tz: str, raw: list[tuple[int, int, int]], day: date, buffer: int, bookings: list[int]
) -> None:
    weekly: dict[int, list[tuple[time, time]]] = {}
    for weekday, hour, hours in raw:
        weekly.setdefault(weekday, []).append((time(hour), time(min(hour + hours, 23), 59)))
    start = datetime.combine(day, time(), tzinfo=UTC)
    end = start + timedelta(days=14)
    cal = _cal(tz, weekly=weekly, buffer=timedelta(minutes=buffer))
    for quarter in sorted(set(bookings)):
        slot = start + timedelta(minutes=15 * quarter)
        if not cal.clashes(slot, LENGTH):
            cal.add_booking(slot, slot + LENGTH)
    found = slots.free_slots(cal, start, end, LENGTH)
    assert found == sorted(set(found))
    open_windows = slots.windows(cal, start, end)
    for slot in found:
        assert start <= slot < end
        assert any(o <= slot and slot + LENGTH <= c for o, c in open_windows)
        for b_start, b_end in cal.booked:
            assert slot + LENGTH + cal.buffer <= b_start or b_end + cal.buffer <= slot
        local = slot.astimezone(ZoneInfo(tz))
        assert (
            any(
                w_start <= local.time().replace(tzinfo=None) < w_end
                for w_start, w_end in weekly.get(local.weekday(), [])
            )
            or local.dst() != (local - timedelta(hours=3)).dst()
        )


def test_a_weekly_window_from_a_time_skipped_by_dst_opens_when_the_clocks_jump() -> None:
    """Sunday 29 March 2026 in Berlin has no 02:30 (02:00 becomes 03:00). A window from 02:30
    opens at 03:00 local, the first moment past 02:30; it opened at 03:30, an hour late."""
    cal = _cal(weekly={6: [(time(2, 30), time(5))]})
    found = slots.free_slots(
        cal, datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC), LENGTH
    )
    assert [_local(s, "Europe/Berlin") for s in found] == ["Sun 03:00", "Sun 04:00"]
    assert found[0] == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_a_wall_time_of_the_hour_repeated_when_clocks_go_back_is_its_first_occurrence() -> None:
    """Sunday 25 October 2026 in Berlin has 02:30 twice: a window opens at the first (summer
    time, 00:30 UTC), as documented."""
    cal = _cal(weekly={6: [(time(2, 30), time(4))]})
    found = slots.free_slots(
        cal, datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 26, tzinfo=UTC), LENGTH
    )
    assert found[0] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_local_instant_maps_a_skipped_time_to_the_jump_in_any_gap() -> None:
    # Lord Howe Island moves by half an hour; Samoa skipped the whole of 30 December 2011.
    lord_howe = slots.local_instant(date(2026, 10, 4), time(2, 15), ZoneInfo("Australia/Lord_Howe"))
    assert lord_howe == datetime(2026, 10, 3, 15, 30, tzinfo=UTC)  # 02:30 +11:00
    apia = slots.local_instant(date(2011, 12, 30), time(12), ZoneInfo("Pacific/Apia"))
    assert apia == datetime(2011, 12, 30, 10, 0, tzinfo=UTC)  # midnight on the 31st, +14:00
