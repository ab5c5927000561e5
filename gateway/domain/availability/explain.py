"""Why a time is (not) offered: Calgate's ``explain`` extension, for one start the app names.

For a meeting of the query's duration starting at ``at``, each member is free, or each thing
that stops them is named: an event (its calendar and uid; never its text here), an event
that breaks a buffer, the query periods, the member's own available periods, their managed
availability (rules and available periods), or their profile. Each group then says how many
of its members are free against how many it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from . import intervals as iv
from .busy import BusyEvent, counts, span_of
from .intervals import Spans
from .query import Member, Query

Reason = Literal["busy", "buffer_before", "buffer_after", "query_periods",
                 "available_periods", "managed_availability", "unavailable", "off_grid"]


@dataclass(frozen=True, slots=True)
class Obstacle:
    """One thing that stops a member; ``event`` is set for busy and buffer reasons."""

    reason: Reason
    event: BusyEvent | None = None
    detail: str | None = None  # why a member is unavailable (its profile's state)


@dataclass(frozen=True, slots=True)
class MemberState:
    """What the explanation needs of one member (the service reads it from the mirror)."""

    member: Member
    zone: ZoneInfo
    events: Sequence[BusyEvent]
    windows: Spans | None = None  # managed availability; None: not managed
    unavailable: str | None = None  # the reason, when the member cannot be answered for


@dataclass(frozen=True, slots=True)
class Explanation:
    """The answer for one start: offered or not, and per member and group, why."""

    at: int
    end: int
    offered: bool
    members: tuple[tuple[str, tuple[Obstacle, ...]], ...]  # (sub, obstacles); () = free
    groups: tuple[tuple[int, int], ...]  # (free members, needed) per group
    off_grid: bool = False


def obstacles(query: Query, state: MemberState, at: int, tentative_busy: bool
              ) -> tuple[Obstacle, ...]:
    """Everything that stops ``state``'s member from a meeting starting at ``at``."""
    if state.unavailable is not None:
        return (Obstacle("unavailable", detail=state.unavailable),)
    end = at + query.duration
    found: list[Obstacle] = []
    if not _covers(iv.normalise(query.query_periods), at, end):
        found.append(Obstacle("query_periods"))
    own = state.member.available_periods
    if own and not _covers(iv.normalise(own), at, end):
        found.append(Obstacle("available_periods"))
    if state.windows is not None and not _covers(iv.normalise(state.windows), at, end):
        found.append(Obstacle("managed_availability"))
    for event in state.events:
        if counts(event, tentative_busy):
            reason = _clash(span_of(event, state.zone), at, end, query)
            if reason is not None:
                found.append(Obstacle(reason, event))
    return tuple(found)


def _covers(spans: Spans, start: int, end: int) -> bool:
    return iv.subtract([(start, end)], spans) == []


def _clash(span: tuple[int, int], start: int, end: int, query: Query) -> Reason | None:
    s, e = span
    if s >= e:
        return None
    if s < end and e > start:
        return "busy"
    if e > start - query.buffer.before and s < start:
        return "buffer_before"
    if s < end + query.buffer.after and e > end:
        return "buffer_after"
    return None


def explain(query: Query, states: Mapping[str, MemberState], at: int,
            tentative_busy: bool = True) -> Explanation:
    """Why a meeting of the query's duration starting at ``at`` is, or is not, offered."""
    found = {m.sub: obstacles(query, states[m.sub], at, tentative_busy)
             for m in query.members}
    groups = tuple((sum(1 for m in g.members if not found[m.sub]), g.needed)
                   for g in query.groups)
    grid = query.grid
    off_grid = grid is not None and at % grid != 0
    offered = not off_grid and all(free >= needed for free, needed in groups)
    return Explanation(at, at + query.duration, offered,
                       tuple((m.sub, found[m.sub]) for m in query.members), groups, off_grid)


__all__ = ["Explanation", "MemberState", "Obstacle", "Reason", "explain", "obstacles"]
