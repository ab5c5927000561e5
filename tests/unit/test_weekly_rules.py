"""Weekly availability rules expanded into UTC intervals (gateway/domain/availability/rules.py),
including the days the clocks change in several zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.availability.rules import (
    WeeklyPeriod,
    expand,
    find_zone,
    format_minutes,
    merge,
    parse_clock,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def hm(text: str) -> int:
    minutes = parse_clock(text, allow_end_of_day=True)
    assert minutes is not None
    return minutes


def period(day: int, start: str, end: str) -> WeeklyPeriod:
    return WeeklyPeriod(day, hm(start), hm(end))


@pytest.mark.parametrize("text,expected", [
    ("00:00", 0), ("09:30", 570), ("23:59", 1439), ("24:00", None), ("25:00", None),
    ("12:60", None), ("9:30", None), ("09:3", None), ("0930", None), ("ab:cd", None),
    ("-1:00", None), ("09:30:00", None), ("", None),
])
def test_clock_times(text: str, expected: int | None) -> None:
    assert parse_clock(text) == expected


def test_24_00_is_only_an_end() -> None:
    assert parse_clock("24:00", allow_end_of_day=True) == 1440
    assert parse_clock("24:01", allow_end_of_day=True) is None
    assert format_minutes(1440) == "24:00" and format_minutes(570) == "09:30"


def test_a_week_in_utc() -> None:
    rules = [period(MON, "09:00", "12:00"), period(MON, "13:00", "17:00"),
             period(WED, "09:30", "12:30")]
    zone = ZoneInfo("Etc/UTC")
    # 2026-01-05 is a Monday.
    got = expand(rules, zone, utc(2026, 1, 5), utc(2026, 1, 12))
    assert got == [(utc(2026, 1, 5, 9), utc(2026, 1, 5, 12)),
                   (utc(2026, 1, 5, 13), utc(2026, 1, 5, 17)),
                   (utc(2026, 1, 7, 9, 30), utc(2026, 1, 7, 12, 30))]


def test_the_window_clips_and_days_outside_it_are_left_out() -> None:
    rules = [period(MON, "09:00", "17:00")]
    got = expand(rules, ZoneInfo("Etc/UTC"), utc(2026, 1, 5, 10), utc(2026, 1, 5, 11))
    assert got == [(utc(2026, 1, 5, 10), utc(2026, 1, 5, 11))]
    assert expand(rules, ZoneInfo("Etc/UTC"), utc(2026, 1, 6), utc(2026, 1, 12)) == []
    assert expand([], LONDON, utc(2026, 1, 1), utc(2026, 2, 1)) == []
    assert expand(rules, LONDON, utc(2026, 1, 5, 11), utc(2026, 1, 5, 10)) == []


def test_a_local_day_that_is_another_utc_day() -> None:
    # Monday 08:00-10:00 in Sydney (UTC+11 in January) is Sunday 21:00-23:00 UTC.
    got = expand([period(MON, "08:00", "10:00")], SYDNEY, utc(2026, 1, 4), utc(2026, 1, 5))
    assert got == [(utc(2026, 1, 4, 21), utc(2026, 1, 4, 23))]


def test_touching_periods_merge_and_24_00_reaches_midnight() -> None:
    rules = [period(MON, "18:00", "24:00"), period(TUE, "00:00", "06:00")]
    got = expand(rules, ZoneInfo("Etc/UTC"), utc(2026, 1, 5), utc(2026, 1, 7))
    assert got == [(utc(2026, 1, 5, 18), utc(2026, 1, 6, 6))]


@pytest.mark.parametrize("zone,before,after,offsets", [
    # Spring forward: the Sunday the clocks change, and the weeks around it.
    (LONDON, datetime(2026, 3, 23), datetime(2026, 3, 30), (0, 1)),
    (NEW_YORK, datetime(2026, 3, 2), datetime(2026, 3, 9), (-5, -4)),
    # Fall back.
    (LONDON, datetime(2026, 10, 19), datetime(2026, 10, 26), (1, 0)),
    (NEW_YORK, datetime(2026, 10, 26), datetime(2026, 11, 2), (-4, -5)),
    # Southern hemisphere: Sydney goes back in April, forward in October.
    (SYDNEY, datetime(2026, 3, 30), datetime(2026, 4, 6), (11, 10)),
    (SYDNEY, datetime(2026, 9, 28), datetime(2026, 10, 5), (10, 11)),
])
def test_nine_to_five_stays_nine_to_five_across_a_change(
        zone: ZoneInfo, before: datetime, after: datetime, offsets: tuple[int, int]) -> None:
    rule = [period(MON, "09:00", "17:00")]  # both dates are Mondays
    for day, offset in zip((before, after), offsets, strict=True):
        start = day.replace(tzinfo=UTC) - timedelta(days=1)
        got = expand(rule, zone, start, start + timedelta(days=3))
        nine = day.replace(hour=9, tzinfo=UTC) - timedelta(hours=offset)
        assert got == [(nine, nine + timedelta(hours=8))], (zone, day)
        assert [lo.astimezone(zone).strftime("%H:%M") for lo, _ in got] == ["09:00"]
        assert [hi.astimezone(zone).strftime("%H:%M") for _, hi in got] == ["17:00"]


def test_every_day_of_a_week_with_a_change_keeps_its_wall_times() -> None:
    rule = [period(day, "08:30", "18:15") for day in range(7)]
    got = expand(rule, NEW_YORK, utc(2026, 3, 5), utc(2026, 3, 12))
    assert len(got) == 7
    for lo, hi in got:
        assert lo.astimezone(NEW_YORK).strftime("%H:%M") == "08:30"
        assert hi.astimezone(NEW_YORK).strftime("%H:%M") == "18:15"
        assert hi - lo == timedelta(hours=9, minutes=45)


def test_a_period_through_the_skipped_hour_covers_the_times_that_exist() -> None:
    # London, 2026-03-29 (a Sunday): 01:00 GMT jumps to 02:00 BST; 01:00-02:00 never exists.
    window = (utc(2026, 3, 28), utc(2026, 3, 30))
    through = expand([period(SUN, "00:30", "03:00")], LONDON, *window)
    assert through == [(utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 2))]  # 00:30 GMT-03:00 BST
    assert through[0][1] - through[0][0] == timedelta(hours=1, minutes=30)
    # Starting in the gap: from the jump (01:00 UTC, 02:00 BST).
    starts_inside = expand([period(SUN, "01:30", "04:00")], LONDON, *window)
    assert starts_inside == [(utc(2026, 3, 29, 1), utc(2026, 3, 29, 3))]
    # Ending in the gap: up to the jump.
    ends_inside = expand([period(SUN, "00:00", "01:30")], LONDON, *window)
    assert ends_inside == [(utc(2026, 3, 29, 0), utc(2026, 3, 29, 1))]
    # Wholly inside the gap: no time at all.
    assert expand([period(SUN, "01:10", "01:50")], LONDON, *window) == []


def test_a_period_through_the_repeated_hour_keeps_both_occurrences() -> None:
    # New York, 2026-11-01 (a Sunday): 01:00-02:00 happens twice (EDT, then EST).
    window = (utc(2026, 10, 31), utc(2026, 11, 2))
    got = expand([period(SUN, "00:00", "01:30")], NEW_YORK, *window)
    # From 00:00 EDT (04:00 UTC) to the second 01:30, in EST (06:30 UTC).
    assert got == [(utc(2026, 11, 1, 4), utc(2026, 11, 1, 6, 30))]
    starts = expand([period(SUN, "01:30", "03:00")], NEW_YORK, *window)
    # From the first 01:30 (EDT, 05:30 UTC) to 03:00 EST (08:00 UTC).
    assert starts == [(utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 8))]


def test_a_zone_whose_midnight_is_skipped() -> None:
    # America/Santiago moved its clocks forward at 24:00 on 2026-09-05 (Saturday night):
    # Sunday's 00:00-01:00 does not exist there, so Sunday starts at 01:00.
    santiago = ZoneInfo("America/Santiago")
    got = expand([period(SUN, "00:00", "02:00")], santiago, utc(2026, 9, 5), utc(2026, 9, 8))
    assert len(got) == 1
    lo, hi = got[0]
    assert lo.astimezone(santiago).strftime("%H:%M") == "01:00"
    assert hi.astimezone(santiago).strftime("%H:%M") == "02:00"
    assert hi - lo == timedelta(hours=1)


def test_merge() -> None:
    a, b, c, d = (utc(2026, 1, 1, h) for h in (9, 10, 11, 12))
    assert merge([(c, d), (a, b), (b, c)]) == [(a, d)]
    assert merge([(a, c), (b, b)]) == [(a, c)]
    assert merge([(a, b), (c, d)]) == [(a, b), (c, d)]
    assert merge([]) == []


def test_find_zone() -> None:
    assert find_zone("Europe/Paris") == ZoneInfo("Europe/Paris")
    assert find_zone("Mars/Olympus") is None
    assert find_zone("../../etc/passwd") is None
