"""Which mirrored events make a member busy, and when (pure; the service reads the rows).

- Cancelled and transparent (free) events never count, nor invitations the member declined.
- Tentative events (and invitations answered "tentative") count as busy unless the query
  says otherwise.
- An all-day event occupies the member's local days: the mirror stores its dates as
  midnight UTC, and here they become midnight to midnight in the member's zone, so a day
  is 23 or 25 hours long across a DST change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from . import intervals as iv
from .intervals import Span, Spans


@dataclass(frozen=True, slots=True)
class BusyEvent:
    """The plaintext columns of one mirrored event instance that decide busy time."""

    calendar_id: str
    event_uid: str
    start: datetime  # aware; all-day: midnight UTC of the first date
    end: datetime  # aware; all-day: midnight UTC of the day after the last date
    all_day: bool = False
    status: str = "confirmed"  # confirmed, tentative, cancelled, unknown
    transparency: str = "opaque"  # opaque, transparent, unknown
    participation: str | None = None  # the member's own answer, when the mirror has it
    managed: bool = False  # one of the app's own events
    zone: ZoneInfo | None = None  # the calendar's zone for all-day dates, if it has one


def counts(event: BusyEvent, tentative_busy: bool = True) -> bool:
    """Whether the event makes its member busy at all."""
    if event.status == "cancelled" or event.transparency == "transparent":
        return False
    if event.participation == "declined":
        return False
    tentative = event.status == "tentative" or event.participation == "tentative"
    return tentative_busy or not tentative


def span_of(event: BusyEvent, zone: ZoneInfo) -> Span:
    """The event's time as seconds; all-day dates as local days in its calendar's zone,
    else the member's."""
    if not event.all_day:
        return iv.seconds(event.start), iv.seconds(event.end)
    local = event.zone or zone
    return (local_midnight(event.start.date(), local),
            local_midnight(event.end.date(), local))


def local_midnight(day: date, zone: ZoneInfo) -> int:
    """The first second of ``day`` in ``zone``."""
    # ``fold=0`` and zoneinfo's reading of a nonexistent midnight (a DST change at 00:00,
    # as in some zones) both give the earlier offset: the day starts at the first instant.
    return iv.seconds(datetime.combine(day, time(), zone).astimezone(UTC))


def busy_spans(events: Iterable[BusyEvent], zone: ZoneInfo, tentative_busy: bool = True
               ) -> Spans:
    """A member's busy set from their events."""
    return iv.normalise(span_of(e, zone) for e in events if counts(e, tentative_busy))


__all__ = ["BusyEvent", "busy_spans", "counts", "local_midnight", "span_of"]
