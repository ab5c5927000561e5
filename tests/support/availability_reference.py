"""A brute-force availability answer, minute by minute, written from the rules in words.

Independent of the engine: no interval algebra, one flag per minute per member, kept as
the bits of a Python int so that "every minute of the meeting is usable" is an AND of
shifted copies and the reference stays fast enough for thousands of cases. Times are
minute indices counted from ``base`` (a whole minute: seconds since the epoch / 60).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from itertools import combinations
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class RefEvent:
    start: int  # timed: minute index; all-day: a date
    end: int
    all_day_from: date | None = None
    all_day_to: date | None = None  # exclusive
    status: str = "confirmed"
    transparency: str = "opaque"
    participation: str | None = None


@dataclass(frozen=True)
class RefMember:
    sub: str
    zone: str
    events: tuple[RefEvent, ...] = ()
    periods: tuple[tuple[int, int], ...] = ()  # own available periods (empty: none)
    windows: tuple[tuple[int, int], ...] | None = None  # managed windows


@dataclass(frozen=True)
class RefQuery:
    base: int  # minutes since the epoch of index 0
    horizon: int  # indices 0..horizon-1 may be asked about
    groups: tuple[tuple[tuple[str, ...], int], ...]  # (subs, needed)
    members: tuple[RefMember, ...]
    duration: int
    periods: tuple[tuple[int, int], ...]
    before: int = 0
    after: int = 0
    grid: int | None = None
    response_format: str = "periods"
    max_results: int | None = None
    tentative_busy: bool = True
    margin: int = field(default=0)


DAY_LOW, DAY_HIGH = -24 * 60, 72 * 60  # the minutes whose local dates are worked out


@lru_cache(maxsize=256)
def local_days(zone: str, base: int) -> dict[date, tuple[int, int]]:
    """Each local date seen from DAY_LOW to DAY_HIGH -> (its first minute, one past its
    last), read off minute by minute."""
    tz = ZoneInfo(zone)
    low, high = DAY_LOW, DAY_HIGH
    days: dict[date, tuple[int, int]] = {}
    for t in range(low, high):
        day = datetime.fromtimestamp((base + t) * 60, UTC).astimezone(tz).date()
        first, _ = days.get(day, (t, t))
        days[day] = (first, t + 1)
    return days


def _counts(e: RefEvent, tentative_busy: bool) -> bool:
    if e.status == "cancelled" or e.transparency == "transparent":
        return False
    if e.participation == "declined":
        return False
    tentative = e.status == "tentative" or e.participation == "tentative"
    return tentative_busy or not tentative


def bits(a: int, b: int, low: int, high: int) -> int:
    """The minutes [a, b) as bits (bit i is minute low + i), cut to [low, high)."""
    a, b = max(a, low), min(b, high)
    return ((1 << (b - a)) - 1) << (a - low) if a < b else 0


def busy_bits(q: RefQuery, m: RefMember, low: int, high: int) -> int:
    busy = 0
    days = local_days(m.zone, q.base)
    for e in m.events:
        if not _counts(e, q.tentative_busy):
            continue
        if e.all_day_from is not None and e.all_day_to is not None:
            for day, (first, last) in days.items():
                if e.all_day_from <= day < e.all_day_to:
                    busy |= bits(first, last, low, high)
        else:
            busy |= bits(e.start, e.end, low, high)
    return busy


def _any_bits(spans: tuple[tuple[int, int], ...], horizon: int) -> int:
    out = 0
    for s, e in spans:
        out |= bits(s, e, 0, horizon)
    return out


def can_start(q: RefQuery, m: RefMember) -> int:
    """Bit s set: a meeting [s, s + duration) suits the member: every minute of it usable,
    no busy minute from ``before`` ahead of it to ``after`` past it."""
    full = (1 << q.horizon) - 1
    usable = _any_bits(q.periods, q.horizon)
    if m.periods:
        usable &= _any_bits(m.periods, q.horizon)
    if m.windows is not None:
        usable &= _any_bits(m.windows, q.horizon)
    fits = full
    for i in range(q.duration):  # minute s + i usable, for every i
        fits &= usable >> i
    low = -q.before - 1
    busy = busy_bits(q, m, low, q.horizon + q.duration + q.after + 1)
    clash = 0
    for j in range(-q.before, q.duration + q.after):  # minute s + j busy, for some j
        clash |= busy >> (j - low)
    return fits & ~clash & full


def _set(value: int, horizon: int) -> list[int]:
    return [t for t in range(horizon) if value >> t & 1]


def answer(q: RefQuery) -> list[tuple[int, int, tuple[str, ...]]]:
    order = [m.sub for m in q.members]
    ok = {m.sub: can_start(q, m) for m in q.members}
    good = (1 << q.horizon) - 1
    for subs, needed in q.groups:
        enough = 0
        for chosen in combinations(subs, needed):
            together = (1 << q.horizon) - 1
            for sub in chosen:
                together &= ok[sub]
            enough |= together
        good &= enough
    grid = q.grid or (None if q.response_format == "periods" else q.duration)
    on_grid = [grid is None or (q.base + t) % grid == 0 for t in range(q.horizon)]
    starts = _set(good, q.horizon)
    out: list[tuple[int, int, tuple[str, ...]]] = []
    if q.response_format == "periods":
        runs: list[list[int]] = []
        for t in starts:
            if runs and runs[-1][-1] == t - 1:
                runs[-1].append(t)
            else:
                runs.append([t])
        for run in runs:
            points = [p for p in run if on_grid[p]]
            if points:
                who = tuple(sub for sub in order if any(ok[sub] >> p & 1 for p in points))
                out.append((points[0], points[-1] + q.duration, who))
    else:
        free_from = -10 ** 9
        for s in starts:
            if on_grid[s] and s >= free_from:
                out.append((s, s + q.duration, tuple(sub for sub in order if ok[sub] >> s & 1)))
                free_from = s + q.duration if q.response_format == "slots" else s + 1
    return out if q.max_results is None else out[:q.max_results]
