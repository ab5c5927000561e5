"""Weekly availability rules (API.md s8.3) expanded into UTC intervals. Pure: no I/O.

A rule says "Monday 09:00-17:00 in Europe/London"; the wall clock is what the person keeps,
so the expansion follows it across daylight-saving changes: 09:00-17:00 local is 08:00-16:00
UTC in summer and 09:00-17:00 UTC in winter, on both sides of the change.

Two wall times are special on the days the clocks change (the rules below are documented for
users in the README's "Availability rules" section):

* **A skipped time** (spring forward: in Europe/London 01:00-02:00 never happens) is moved to
  the instant the clocks jump, so a period covers exactly the wall times that exist: 01:30-
  03:00 becomes 02:00 (BST, the jump) to 03:00; a period wholly inside the gap is empty.
* **A repeated time** (fall back: 01:00-02:00 happens twice) starts a period at its first
  occurrence and ends one at its last, so no period loses the repeated hour.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

# Cronofy's day names; Python's date.weekday() indexes this tuple (Monday is 0).
DAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                         "sunday")
END_OF_DAY = "24:00"  # an end_time that means the next midnight

Interval = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class WeeklyPeriod:
    """One weekly period: ``day`` (0 = Monday), local ``start`` and ``end`` minutes of the day
    (``end`` may be 1440, the next midnight), ``start`` < ``end``."""

    day: int
    start: int
    end: int

    def as_json(self) -> dict[str, str]:
        return {"day": DAYS[self.day], "start_time": format_minutes(self.start),
                "end_time": format_minutes(self.end)}


def find_zone(name: str) -> ZoneInfo | None:
    """The IANA zone ``name``, or None. An allow-list, so a stored or sent name never makes
    ZoneInfo look up an arbitrary path."""
    return ZoneInfo(name) if name in _known_zones() else None


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_clock(value: str, *, allow_end_of_day: bool = False) -> int | None:
    """``HH:MM`` (00:00-23:59, and ``24:00`` where allowed) as minutes; None if invalid."""
    if len(value) != 5 or value[2] != ":" or not (value[:2] + value[3:]).isdigit():
        return None
    hours, minutes = int(value[:2]), int(value[3:])
    if value == END_OF_DAY and allow_end_of_day:
        return 24 * 60
    if hours > 23 or minutes > 59:
        return None
    return hours * 60 + minutes


def expand(periods: Sequence[WeeklyPeriod], zone: ZoneInfo, start: datetime, end: datetime
           ) -> list[Interval]:
    """The UTC intervals of ``periods`` (in ``zone``) within [``start``, ``end``), sorted and
    merged (adjacent periods join)."""
    if not periods or start >= end:
        return []
    by_day: dict[int, list[WeeklyPeriod]] = {}
    for period in periods:
        by_day.setdefault(period.day, []).append(period)
    # A day on either side: a zone's local date may differ from the UTC date.
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    found: list[Interval] = []
    day = first
    while day <= last:
        for period in by_day.get(day.weekday(), ()):
            lo = _instant(day, period.start, zone, fold=0)
            hi = _instant(day, period.end, zone, fold=1)
            lo, hi = max(lo, start), min(hi, end)
            if lo < hi:
                found.append((lo, hi))
        day += timedelta(days=1)
    return merge(found)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, overlapping or touching intervals joined."""
    merged: list[Interval] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _instant(day: date, minutes: int, zone: ZoneInfo, *, fold: int) -> datetime:
    """The UTC instant of a wall time on ``day``: ``fold`` picks the occurrence of a repeated
    time (0 the first, 1 the last); a skipped time becomes the instant the clocks jumped."""
    if minutes >= 24 * 60:
        day, minutes = day + timedelta(days=1), minutes - 24 * 60
    local = datetime.combine(day, time(minutes // 60, minutes % 60)).replace(
        tzinfo=zone, fold=fold)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    return _jump(local, zone)


def _jump(local: datetime, zone: ZoneInfo) -> datetime:
    """The instant the clocks jumped over the skipped wall time ``local``: between its two
    readings (with the offsets before and after the jump), found by bisection in seconds."""
    late = local.replace(fold=0).astimezone(UTC)  # read with the offset before the jump
    early = local.replace(fold=1).astimezone(UTC)  # with the offset after it
    after = late.astimezone(zone).utcoffset()
    lo, hi = int(min(early, late).timestamp()), int(max(early, late).timestamp())
    while hi - lo > 1:  # invariant: lo is before the jump, hi after it
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)
