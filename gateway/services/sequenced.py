"""``POST /v1/sequenced_availability`` (API.md s8.2) from the mirror: each event of the
sequence is an availability query of its own (its participants, duration, start interval,
minimum buffers and periods), answered by the availability service as overlapping slots;
the pure search (domain/availability/sequencing.py) joins them in order with the gaps the
buffers allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..domain.availability.engine import Available
from ..domain.availability.intervals import moment
from ..domain.availability.query import Query
from ..domain.availability.sequencing import Gap, Step, sequences
from .availability import AvailabilityService, Caller, Unavailable


@dataclass(frozen=True, slots=True)
class SequenceItem:
    """One event of the sequence: its query (overlapping slots, no result limit) and the
    gaps it needs from the events around it. ``label`` is the app's ``sequence_id`` as
    sent (a string or a number), echoed in the answer."""

    label: str | int
    query: Query | None  # None: its periods leave no time at all
    before: Gap
    after: Gap


@dataclass(frozen=True, slots=True)
class PlacedItem:
    label: str | int
    slot: Available


@dataclass(frozen=True, slots=True)
class SequencedAnswer:
    sequences: list[list[PlacedItem]]
    unavailable: tuple[Unavailable, ...]


class SequencedService:
    """Sequenced availability over the availability service."""

    def __init__(self, availability: AvailabilityService) -> None:
        self.availability = availability

    async def answer(self, items: Sequence[SequenceItem], caller: Caller, tentative_busy: bool,
                     limit: int) -> SequencedAnswer:
        """Raises the availability service's UnknownMember / UnknownMemberCalendar."""
        steps: list[Step] = []
        by_start: list[dict[int, Available]] = []
        unavailable: dict[str, Unavailable] = {}
        for index, item in enumerate(items):
            slots: list[Available] = []
            if item.query is not None:
                answer = await self.availability.answer(item.query, caller, tentative_busy)
                slots = answer.items
                unavailable |= {u.sub: u for u in answer.unavailable}
            by_start.append({slot.start: slot for slot in slots})
            steps.append(Step(str(index), [(moment(s.start), moment(s.end)) for s in slots],
                              item.before, item.after))
        found = sequences(steps, limit)
        return SequencedAnswer(
            [[PlacedItem(items[int(p.sequence_id)].label,
                         by_start[int(p.sequence_id)][int(p.start.timestamp())])
              for p in placed] for placed in found],
            tuple(unavailable.values()))
