"""``POST /v1/availability`` answered from the mirror (API.md s8.1): no upstream call.

Busy time is read from the events index (the app's pending writes are already in it: the
write service puts their desired state there in the same transaction, so a slot just booked
is busy in the very next answer and a pending delete frees its time). A member whose busy
time cannot be known (a disconnected or never-synced profile) is never free: they count as
busy throughout and the answer names them with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import Engine

from ..domain.availability import intervals as iv
from ..domain.availability.engine import Available, compute, member_free
from ..domain.availability.explain import Explanation, MemberState, explain
from ..domain.availability.intervals import Spans
from ..domain.availability.managed import ManagedAvailability
from ..domain.availability.query import Member, Query
from ..domain.sealing import DataKeys
from .availability_mirror import (
    MemberRecord,
    UnknownMember,
    UnknownMemberCalendar,
    events_of,
    read_busy_rows,
    read_members,
    summaries,
)
from .availability_spans import BusyCache, cached_spans


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A member Calgate cannot answer for, and why (Calgate's extension)."""

    sub: str
    reason: str  # profile_disconnected, profile_not_synced, calendar_not_synced, ...
    profile_id: str | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: the client app, and for an access token the one account it may name."""

    client_id: str
    only_subject: str | None = None
    read_events: bool = False  # the explanation may show event summaries


@dataclass(frozen=True, slots=True)
class Answer:
    """The engine's items, the members answered as unavailable, and the explanation."""

    items: list[Available]
    unavailable: tuple[Unavailable, ...]
    explanation: Explanation | None = None
    summaries: Mapping[str, str] | None = None  # event_uid -> summary (read_events only)


@dataclass(frozen=True, slots=True)
class _Read:
    records: dict[str, MemberRecord]
    busy: dict[str, Spans]  # sub -> merged busy set (answerable members only)
    rows: dict[str, list[Any]]  # sub -> busy rows, every column (only for an explanation)


class AvailabilityService:
    """Answers availability queries over the mirror; managed members ask ``managed``.

    Members' busy sets are kept in ``spans`` (when given) under their account's mirror
    generation, so the same question asked again between two changes costs no event read."""

    def __init__(self, engine: Engine, keys: DataKeys, managed: ManagedAvailability,
                 spans: BusyCache | None = None) -> None:
        self.engine = engine
        self.keys = keys
        self.managed = managed
        self.spans = spans

    async def answer(self, query: Query, caller: Caller, tentative_busy: bool = True
                     ) -> Answer:
        """Raises :class:`UnknownMember` / :class:`UnknownMemberCalendar`."""
        query = await self._rule_calendars(query)
        read = await to_thread.run_sync(self._read, query, caller, tentative_busy)
        windows = {m.sub: await self._windows(query, m) for m in query.members
                   if m.managed_availability}
        # The engine and any explanation run in the thread too: the loop serves others.
        return await to_thread.run_sync(self._computed, query, caller, read, windows,
                                         tentative_busy)

    def _computed(self, query: Query, caller: Caller, read: _Read,
                  windows: dict[str, Spans], tentative_busy: bool) -> Answer:
        free: dict[str, Spans] = {}
        for member in query.members:
            busy = read.busy.get(member.sub)
            free[member.sub] = [] if busy is None else member_free(
                query, member, busy, windows.get(member.sub))
        unavailable = tuple(Unavailable(r.sub, r.unavailable, r.profile_id)
                            for r in read.records.values() if r.unavailable is not None)
        answer = Answer(compute(query, free), unavailable)
        if query.explain_at is None:
            return answer
        return self._explained(answer, query, caller, read, windows, tentative_busy)

    async def _rule_calendars(self, query: Query) -> Query:
        """A managed member who names no calendars counts those its availability rules name
        (API.md s8.3); a member who names some keeps them."""
        groups = []
        for group in query.groups:
            members = []
            for member in group.members:
                if member.managed_availability and not member.calendar_ids:
                    ids = await self.managed.busy_calendars(member.sub,
                                                            member.availability_rule_ids)
                    if ids:
                        member = replace(member, calendar_ids=tuple(sorted(ids)))
                members.append(member)
            groups.append(replace(group, members=tuple(members)))
        return replace(query, groups=tuple(groups))

    def _read(self, query: Query, caller: Caller, tentative_busy: bool) -> _Read:
        start, end = _reach(query)
        with self.engine.connect() as conn:
            # The records carry each account's generation, read before the busy rows: a
            # set kept under it is never newer than what it claims to be.
            records = read_members(conn, query.members, caller.client_id,
                                   caller.only_subject)
            answerable = {sub: r for sub, r in records.items() if r.unavailable is None}
            busy = cached_spans(conn, self.spans, answerable, start, end, tentative_busy)
            rows: dict[str, list[Any]] = {sub: [] for sub in records}
            if query.explain_at is not None:
                owner = {cal: sub for sub, r in answerable.items() for cal in r.calendars}
                for row in read_busy_rows(conn, owner, start, end, tentative_busy):
                    rows[owner[row.calendar_id]].append(row)
        return _Read(records, busy, rows)

    async def _windows(self, query: Query, member: Member) -> Spans:
        start, end = query.window
        if query.explain_at is not None:
            start = min(start, query.explain_at)
            end = max(end, query.explain_at + query.duration)
        got = await self.managed.intervals(member.sub, iv.moment(start), iv.moment(end),
                                           member.availability_rule_ids)
        return iv.normalise((iv.seconds(s), iv.seconds(e)) for s, e in got)

    def _explained(self, answer: Answer, query: Query, caller: Caller, read: _Read,
                   windows: dict[str, Spans], tentative_busy: bool) -> Answer:
        assert query.explain_at is not None
        states = {sub: MemberState(next(m for m in query.members if m.sub == sub), r.zone,
                                   events_of(read.rows[sub], r), windows.get(sub),
                                   r.unavailable) for sub, r in read.records.items()}
        why = explain(query, states, query.explain_at, tentative_busy)
        texts: dict[str, str] | None = None
        if caller.read_events and caller.only_subject is not None:
            wanted = [(o.event.calendar_id, o.event.event_uid) for _, found in why.members
                      for o in found if o.event is not None]
            with self.engine.connect() as conn:
                texts = summaries(conn, self.keys, caller.only_subject, wanted)
        return Answer(answer.items, answer.unavailable, why, texts)


def _reach(query: Query) -> tuple[Any, Any]:
    """The stretch of time whose busy rows can matter: the query periods (and the explained
    start) widened by the buffers."""
    start, end = query.window
    if query.explain_at is not None:
        start = min(start, query.explain_at)
        end = max(end, query.explain_at + query.duration)
    before, after = query.buffer.before, query.buffer.after
    return (iv.moment(start) - timedelta(seconds=before),
            iv.moment(end) + timedelta(seconds=after))


__all__ = ["Answer", "AvailabilityService", "Caller", "Unavailable", "UnknownMember",
           "UnknownMemberCalendar"]
