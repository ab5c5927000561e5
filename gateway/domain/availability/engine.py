"""The availability engine: periods, slots and overlapping slots from each member's free time.

The model, in whole seconds (all of it arithmetic over interval boundaries):

- A member's *free* set ``F`` is the query periods, narrowed to the member's own
  ``available_periods`` and managed windows when given, minus their busy time widened by
  the buffers (busy ``[a, b)`` blocks a slot ``[s, e)`` when ``a < e + after`` and
  ``b > s - before``, so it is widened to ``[a - after, b + before)``).
- A member can *start* a meeting of ``d`` seconds at ``s`` when ``[s, s + d)`` lies in
  ``F``: their start set is ``F`` with ``d - 1`` seconds taken off each span's end.
- A group accepts a start when at least ``required`` of its members can start there; the
  query accepts it when every group does (the start set ``V``).
- ``periods``: each run ``[p, q)`` of ``V`` (its starts narrowed to the ``start_interval``
  grid when one is given) is the period ``[p, q - 1 + d)``; its participants are the members
  who can start at some accepted start inside it.
- ``overlapping_slots``: every grid point of ``V`` is a slot ``[g, g + d)``; ``slots``: the
  same, taken greedily so that none overlaps the one before. A slot's participants are the
  members who can start at ``g``. The grid is the ``start_interval`` (else the duration),
  counted from the epoch, so 15 minutes means :00, :15, :30 and :45 of every UTC hour.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from . import intervals as iv
from .intervals import Spans
from .query import Buffer, Member, Query


@dataclass(frozen=True, slots=True)
class Available:
    """One available period or slot and the members (subs) who take part in it."""

    start: int
    end: int
    participants: tuple[str, ...]


def member_free(query: Query, member: Member, busy: Spans, windows: Spans | None = None
                ) -> Spans:
    """A member's free set ``F``: the query periods, narrowed to their own available periods
    and (managed availability) ``windows``, minus busy time widened by the buffers."""
    free = iv.normalise(query.query_periods)
    if member.available_periods:
        free = iv.intersect(free, iv.normalise(member.available_periods))
    if windows is not None:
        free = iv.intersect(free, iv.normalise(windows))
    return iv.subtract(free, blocked(busy, query.buffer))


def blocked(busy: Spans, buffer: Buffer) -> Spans:
    """Busy time widened so that a slot overlapping it would break a buffer."""
    return iv.expand(busy, buffer.after, buffer.before)


def starts(free: Spans, duration: int) -> Spans:
    """The seconds at which a ``duration``-second meeting fits inside ``free``."""
    return iv.shrink_end(free, duration - 1)


def accepted_starts(query: Query, member_starts: Mapping[str, Spans]) -> Spans:
    """``V``: the starts every group accepts."""
    accepted: Spans | None = None
    for group in query.groups:
        sets = [member_starts.get(m.sub, []) for m in group.members]
        ok = iv.at_least(group.needed, sets) if group.needed else [(_MIN, _MAX)]
        accepted = ok if accepted is None else iv.intersect(accepted, ok)
    return accepted or []


def compute(query: Query, free: Mapping[str, Spans]) -> list[Available]:
    """The answer in the query's response format, at most ``max_results`` items."""
    member_starts = {sub: starts(spans, query.duration) for sub, spans in free.items()}
    accepted = accepted_starts(query, member_starts)
    if query.grid is not None:
        accepted = on_grid(accepted, query.grid)
    if query.response_format == "periods":
        items: Iterator[Available] = _periods(query, accepted, member_starts)
    else:
        items = _slots(query, accepted, member_starts)
    limit = query.max_results
    out: list[Available] = []
    for item in items:
        if limit is not None and len(out) >= limit:
            break
        out.append(item)
    return out


def on_grid(spans: Spans, grid: int) -> Spans:
    """Each run narrowed to the grid points inside it (``[first, last + 1)``), runs with no
    grid point dropped."""
    out: Spans = []
    for start, end in spans:
        first = -(-start // grid) * grid
        last = (end - 1) // grid * grid
        if first <= last:
            out.append((first, last + 1))
    return out


def _periods(query: Query, accepted: Spans, member_starts: Mapping[str, Spans]
             ) -> Iterator[Available]:
    grid = query.grid
    for start, end in accepted:
        who = tuple(m.sub for m in query.members
                    if _starts_inside(member_starts.get(m.sub, []), start, end, grid))
        yield Available(start, end - 1 + query.duration, who)


def _starts_inside(spans: Spans, start: int, end: int, grid: int | None) -> bool:
    """Whether ``spans`` hold a start (a grid point, when there is a grid) in ``[start,
    end)``."""
    return any(grid is None or -(-s // grid) * grid < e for s, e in iv.clip(spans, start, end))


def _slots(query: Query, accepted: Spans, member_starts: Mapping[str, Spans]
           ) -> Iterator[Available]:
    grid = query.grid or query.duration
    step_over = query.response_format == "slots"
    free_from = _MIN
    for start, end in accepted:
        at = max(start, -(-free_from // grid) * grid)
        while at < end:
            who = tuple(m.sub for m in query.members
                        if iv.holds(member_starts.get(m.sub, []), at))
            yield Available(at, at + query.duration, who)
            free_from = at + query.duration if step_over else at + 1
            at = -(-free_from // grid) * grid


_MIN, _MAX = -(2 ** 62), 2 ** 62

__all__ = ["Available", "accepted_starts", "blocked", "compute", "member_free", "on_grid",
           "starts"]
