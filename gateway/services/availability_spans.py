"""Members' busy spans for an availability answer: read as epoch seconds, kept per process.

Turning thousands of mirror rows into zone-aware datetimes per request was most of an
answer's cost, so the database hands back whole seconds (PostgreSQL's ``extract(epoch ...)``,
SQLite's ``strftime('%s', ...)``) and only the four columns the busy set needs, for every
member in one statement. The merged spans are then kept under everything that shapes them
and the account's *mirror generation* read before them: the generation moves in the same
transaction as every sync, every write the app makes through the API and every change to
calendars or profiles, so a span set is served only while the mirror still holds what it
was made from (a slot booked a moment ago is busy in the very next answer).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, Integer, cast, func, select

from ..domain.availability import intervals as iv
from ..domain.availability.busy import local_midnight
from ..domain.availability.intervals import Spans
from ..persistence.tables import events
from .availability_mirror import MemberRecord, busy_filter

EPOCH_DAY = date(1970, 1, 1)
DAY = 86_400
SPAN_BYTES = 120  # what one kept span costs in memory (a tuple of two ints), roughly


def _epoch(conn: Connection, column: Any) -> ColumnElement[Any]:
    """Whole seconds since the epoch, computed by the database (floored, as ``iv.seconds``)."""
    if conn.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    return cast(func.strftime("%s", column), Integer)  # SQLite keeps naive UTC text


def _rows(conn: Connection, where: list[Any]) -> list[tuple[str, bool, list[int], list[int]]]:
    """``(calendar_id, all_day, starts, ends)`` of the busy rows. PostgreSQL gathers them
    into two arrays per calendar, so a few rows of integer arrays cross the wire instead of
    thousands of rows; SQLite (in-process, no wire) returns a row per event."""
    start, end = _epoch(conn, events.c.start_at), _epoch(conn, events.c.end_at)
    if conn.dialect.name == "postgresql":
        return [(c, bool(a), list(s), list(e)) for c, a, s, e in conn.execute(
            select(events.c.calendar_id, events.c.all_day, func.array_agg(start),
                   func.array_agg(end)).where(*where)
            .group_by(events.c.calendar_id, events.c.all_day))]
    return [(c, bool(a), [s], [e]) for c, s, e, a in conn.execute(
        select(events.c.calendar_id, start, end, events.c.all_day).where(*where))]


def read_spans(conn: Connection, records: Mapping[str, MemberRecord], start: datetime,
               end: datetime, tentative_busy: bool) -> dict[str, Spans]:
    """Each member's merged busy set over ``[start, end)``: one statement for them all (a
    calendar belongs to one account, so its rows are one member's)."""
    owner = {cal: sub for sub, r in records.items() for cal in r.calendars}
    raw: dict[str, list[tuple[int, int]]] = {sub: [] for sub in records}
    if not owner:
        return {sub: [] for sub in records}
    bounds = [r.longest for r in records.values()]  # read with the records: no round trip
    longest = None if None in bounds else max(b for b in bounds if b is not None)
    where = busy_filter(list(owner), start, end, tentative_busy, longest)
    for calendar_id, all_day, starts, ends in _rows(conn, where):
        sub = owner[calendar_id]
        if not all_day:
            raw[sub] += zip(starts, ends, strict=True)
            continue
        # All-day rows are stored as UTC midnights: the days count in the calendar's zone.
        record = records[sub]
        zone = record.calendars.get(calendar_id) or record.zone
        raw[sub] += ((local_midnight(EPOCH_DAY + timedelta(days=s // DAY), zone),
                      local_midnight(EPOCH_DAY + timedelta(days=e // DAY), zone))
                     for s, e in zip(starts, ends, strict=True))
    return {sub: iv.normalise(spans) for sub, spans in raw.items()}


def span_key(record: MemberRecord, start: datetime, end: datetime, tentative_busy: bool
             ) -> Hashable:
    """Everything a member's busy set depends on besides the mirror's rows."""
    zones = tuple(sorted((c, z.key if z else None) for c, z in record.calendars.items()))
    return (record.sub, zones, record.zone.key, start, end, tentative_busy)


class BusyCache:
    """Busy sets by :func:`span_key`, each served only at the generation it was read at and
    for at most ``max_age`` seconds; the least recently used go once ``max_bytes`` is
    reached. Thread-safe: answers are computed in worker threads."""

    def __init__(self, max_bytes: int, max_age: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_spans = max_bytes // SPAN_BYTES
        self.max_age = max_age
        self.clock = clock
        self._entries: OrderedDict[Hashable, tuple[int, float, Spans]] = OrderedDict()
        self._spans = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, generation: int) -> Spans | None:
        """A copy of the set kept under ``key`` if read at ``generation`` and fresh."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == generation and \
                    self.clock() - entry[1] <= self.max_age:
                self._entries.move_to_end(key)
                self.hits += 1
                return list(entry[2])
            if entry is not None:
                self._drop(key)
            self.misses += 1
            return None

    def put(self, key: Hashable, generation: int, spans: Spans) -> None:
        if len(spans) + 1 > self.max_spans:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (generation, self.clock(), list(spans))
            self._spans += len(spans) + 1
            while self._spans > self.max_spans:
                self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._spans = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: Hashable) -> None:
        _, _, spans = self._entries.pop(key)
        self._spans -= len(spans) + 1


def cached_spans(conn: Connection, cache: BusyCache | None,
                 records: Mapping[str, MemberRecord], start: datetime, end: datetime,
                 tentative_busy: bool) -> dict[str, Spans]:
    """Each answerable member's busy set: from ``cache`` where it holds the member's current
    generation, else one read for all the others (then kept)."""
    out: dict[str, Spans] = {}
    keys = {sub: span_key(r, start, end, tentative_busy) for sub, r in records.items()}
    if cache is not None:
        for sub, key in keys.items():
            got = cache.get(key, records[sub].generation)
            if got is not None:
                out[sub] = got
    missing = {sub: r for sub, r in records.items() if sub not in out}
    if missing:
        read = read_spans(conn, missing, start, end, tentative_busy)
        for sub, spans in read.items():
            if cache is not None:
                cache.put(keys[sub], missing[sub].generation, spans)
            out[sub] = spans
    return out


__all__ = ["BusyCache", "cached_spans", "read_spans", "span_key"]
