"""What an app must compute itself without ``POST /v1/availability``: the slots of a
question from each member's busy intervals, plus the busy intervals out of the three
answers the app could ask for them (Calgate's ``/v1/free_busy`` blocks, a CalDAV
``free-busy-query`` VFREEBUSY, Google's ``freebusy.query``), and the endpoint's own answer
in the same form, so the methods can be compared slot for slot.

The computation is the straightforward one an app would write: the candidate starts are
the multiples of ``interval`` (counted from the epoch, so 15 minutes gives :00, :15, ... of
every UTC hour) inside each query period while a whole ``duration`` fits in the period; a
member is free for a candidate when none of their merged busy intervals overlaps it (one
binary search); a group is satisfied when all, or ``required``, of its members are free;
the question when every group is; a slot names every free member of every group. Slots
(Cronofy's ``response_format: "slots"``, unlike ``overlapping_slots``) do not overlap: after
a slot, the next candidate is the first grid point at or after its end. At most
``max_results`` slots, in time order.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from availability_fixtures import Event, Question

Interval = tuple[int, int]  # epoch seconds, end exclusive
Slot = tuple[int, int, frozenset[str]]  # start, end, the subs named


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping, touching intervals joined."""
    out: list[list[int]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


class _Free:
    """One member's busy intervals, merged, asked "free over [start, end)?" by bisection."""

    def __init__(self, busy: Iterable[Interval]) -> None:
        merged = merge(busy)
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]

    def __call__(self, start: int, end: int) -> bool:
        i = bisect_right(self.ends, start)  # the first interval ending after ``start``
        return i == len(self.starts) or self.starts[i] >= end


def slots(question: Question, busy: Mapping[str, Iterable[Interval]]) -> list[Slot]:
    """The question's slots, given every member's busy intervals."""
    free = {sub: _Free(busy.get(sub, ())) for g in question.groups for sub in g.members}
    step = int(question.interval.total_seconds())
    length = int(question.duration.total_seconds())
    out: list[Slot] = []
    free_from = 0  # slots do not overlap: the next one starts after the last one ends
    for period_start, period_end in question.periods:
        low, high = int(period_start.timestamp()), int(period_end.timestamp())
        start = -(-max(low, free_from) // step) * step
        while start + length <= high:
            named = _named(question, free, start, start + length)
            if named is None:
                start += step
                continue
            out.append((start, start + length, named))
            if len(out) == question.max_results:
                return out
            free_from = start + length
            start = -(-free_from // step) * step
    return out


def _named(question: Question, free: Mapping[str, _Free], start: int,
           end: int) -> frozenset[str] | None:
    named: list[str] = []
    for group in question.groups:
        here = [sub for sub in group.members if free[sub](start, end)]
        need = len(group.members) if group.required == "all" else group.required
        if len(here) < need:
            return None
        named += here
    return frozenset(named)


def from_calendar(events: Iterable[Event]) -> list[Interval]:
    """The busy intervals as generated (the events that count), the reference the other
    answers are checked against."""
    return [(int(e.start.timestamp()), int(e.end.timestamp())) for e in events if e.counts]


# -- busy intervals out of each answer -----------------------------------------------------
def epoch(text: str) -> int:
    """An RFC 3339 time (``Z`` or offset), a bare date (midnight UTC) or an iCalendar UTC
    time (``20261214T080000Z``) as epoch seconds."""
    if len(text) == 10:  # 2026-12-14: an all-day block, read with tzid Etc/UTC
        return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())
    if "-" not in text:
        return int(datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp())
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def from_free_busy(blocks: Iterable[Mapping[str, Any]]) -> list[Interval]:
    """Calgate's ``free_busy`` blocks: ``busy``, ``tentative`` and ``unknown`` are busy
    (an app cannot book over what it cannot see), ``free`` is not."""
    return [(epoch(b["start"]), epoch(b["end"])) for b in blocks
            if b["free_busy_status"] != "free"]


_FREEBUSY = re.compile(r"^FREEBUSY(?P<params>;[^:]*)?:(?P<value>.*)$", re.M)


def from_vfreebusy(text: str) -> list[Interval]:
    """A CalDAV free-busy-query answer (RFC 4791 §7.10): every FREEBUSY period whose
    FBTYPE is not FREE (BUSY, BUSY-TENTATIVE, BUSY-UNAVAILABLE; none means BUSY)."""
    unfolded = text.replace("\r\n ", "").replace("\n ", "").replace("\r\n", "\n")
    out: list[Interval] = []
    for match in _FREEBUSY.finditer(unfolded):
        fbtype = re.search(r"FBTYPE=([A-Z-]+)", (match["params"] or "").upper())
        if fbtype is not None and fbtype[1] == "FREE":
            continue
        for period in match["value"].strip().split(","):
            start, _, end = period.partition("/")
            if end.startswith(("P", "+P")):
                raise ValueError(f"a FREEBUSY period with a duration: {period!r}")
            out.append((epoch(start), epoch(end)))
    return out


def from_google(answer: Mapping[str, Any], calendar_id: str) -> list[Interval]:
    """A ``freebusy.query`` answer's busy list for one calendar (errors are not free)."""
    entry = answer["calendars"][calendar_id]
    if entry.get("errors"):
        raise RuntimeError(f"freebusy.query for {calendar_id}: {entry['errors']}")
    return [(epoch(b["start"]), epoch(b["end"])) for b in entry["busy"]]


def from_endpoint(answer: Mapping[str, Any]) -> list[Slot]:
    """``POST /v1/availability``'s slots in the same form."""
    return [(epoch(s["start"]), epoch(s["end"]),
             frozenset(p["sub"] for p in s["participants"]))
            for s in answer["available_slots"]]
