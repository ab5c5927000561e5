"""What a provider's contract harness offers the shared contract suite.

Each provider module adds ``tests/contract/harness_<name>.py`` with a ``harness()`` context
manager yielding a :class:`Harness`: an opened provider on a real (or, for the in-memory
reference, process-local) upstream, a calendar to use, and ways to change the upstream
behind the provider's back, as the calendar's owner would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from providers.model import TimeWindow
from providers.protocol import CalendarProvider

# A window around the recurring series below: weekly on Mondays 09:00 Europe/Berlin from
# 2027-03-01 (CET, UTC+1) across the DST change of 2027-03-28 (CEST, UTC+2).
WINDOW = TimeWindow(datetime(2027, 2, 20, tzinfo=UTC), datetime(2027, 4, 20, tzinfo=UTC))
SERIES_EXPECTED_STARTS = (
    datetime(2027, 3, 1, 8, 0, tzinfo=UTC),
    # 2027-03-08 is excluded (EXDATE)
    datetime(2027, 3, 15, 8, 0, tzinfo=UTC),
    datetime(2027, 3, 22, 13, 0, tzinfo=UTC),  # moved to 14:00 local (RECURRENCE-ID override)
    datetime(2027, 3, 29, 7, 0, tzinfo=UTC),  # after DST: 09:00 local is 07:00 UTC
    datetime(2027, 4, 5, 7, 0, tzinfo=UTC),
    datetime(2027, 4, 12, 7, 0, tzinfo=UTC),
    datetime(2027, 4, 19, 7, 0, tzinfo=UTC),
)


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2027, month, day, hour, tzinfo=UTC)


class Harness(Protocol):
    name: str
    provider: CalendarProvider
    calendar_id: str
    writable: bool

    def upstream_add(self, uid: str, summary: str, start: datetime,
                     duration: timedelta = timedelta(hours=1),
                     transparent: bool = False) -> None:
        """Create a single event upstream, as the owner would."""
        ...

    def upstream_rename(self, uid: str, summary: str) -> None:
        ...

    def upstream_remove(self, uid: str) -> None:
        ...

    def upstream_add_series(self, uid: str) -> None:
        """The weekly series described above (RRULE, one EXDATE, one moved instance)."""
        ...


@dataclass
class Unused:
    """Placeholder for harness fields a read-only provider does not need."""
