"""Sequenced availability (API.md s8.2): events in order, each with its own free slots, joined
into sequences whose gaps honour every step's buffers. Pure: no I/O.

Each step arrives with its candidate slots (start-sorted ``(start, end)`` pairs, already free
for that step's participants, minimum buffers included). Between two consecutive steps A and
B the gap ``B.start - A.end`` must be at least ``A.after.minimum`` and ``B.before.minimum``
and at most ``A.after.maximum`` and ``B.before.maximum`` (a missing maximum is no bound). A
gap is never negative: steps never overlap.

A sequence is found by depth-first search from each of the first step's slots, trying the
next step's slots in time order; the first complete sequence from a start is kept (the
earliest times), and each answer starts at a different time. The search visits at most
``budget`` slots so a hostile query cannot make it run for long.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

Slot = tuple[datetime, datetime]
ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class Gap:
    """The time a step needs before or after itself: at least ``minimum``, at most
    ``maximum`` (None: unbounded)."""

    minimum: timedelta = ZERO
    maximum: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One event of the sequence and where it may go."""

    sequence_id: str
    slots: Sequence[Slot]  # sorted by start
    before: Gap = Gap()
    after: Gap = Gap()


@dataclass(frozen=True, slots=True)
class Placed:
    """A step placed at a time."""

    sequence_id: str
    start: datetime
    end: datetime


def gap_bounds(earlier: Step, later: Step) -> tuple[timedelta, timedelta | None]:
    """The least and greatest gap allowed between ``earlier`` and ``later``."""
    least = max(earlier.after.minimum, later.before.minimum, ZERO)
    bounds = [b for b in (earlier.after.maximum, later.before.maximum) if b is not None]
    return least, (min(bounds) if bounds else None)


def sequences(steps: Sequence[Step], limit: int, budget: int = 200_000
              ) -> list[list[Placed]]:
    """Up to ``limit`` sequences, earliest first, each starting at a different time."""
    if not steps or limit <= 0:
        return []
    search = _Search(steps, budget)
    found: list[list[Placed]] = []
    for position in range(len(steps[0].slots)):
        path = search.rest(0, position)
        if path is not None:
            found.append([Placed(step.sequence_id, lo, hi)
                          for step, (lo, hi) in zip(steps, path, strict=True)])
            if len(found) >= limit:
                break
        if search.spent >= budget:
            break
    return found


class _Search:
    """The depth-first search. Whether a slot can be followed depends only on that slot, so
    a slot that could not be followed once is never tried again (``dead``)."""

    def __init__(self, steps: Sequence[Step], budget: int) -> None:
        self.steps, self.budget, self.spent = steps, budget, 0
        self.starts = [[slot[0] for slot in step.slots] for step in steps]
        self.dead: set[tuple[int, int]] = set()

    def rest(self, index: int, position: int) -> list[Slot] | None:
        """The slots from step ``index``'s slot ``position`` to the last step, or None."""
        slot = self.steps[index].slots[position]
        if index + 1 == len(self.steps):
            return [slot]
        if (index, position) in self.dead:
            return None
        least, greatest = gap_bounds(self.steps[index], self.steps[index + 1])
        latest = None if greatest is None else slot[1] + greatest
        starts = self.starts[index + 1]
        for following in range(bisect_left(starts, slot[1] + least), len(starts)):
            self.spent += 1
            if (latest is not None and starts[following] > latest) or self.spent > self.budget:
                break
            found = self.rest(index + 1, following)
            if found is not None:
                return [slot, *found]
        if self.spent <= self.budget:
            self.dead.add((index, position))
        return None
