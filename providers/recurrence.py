"""A managed event's recurrence: Cronofy's ``recurrence.rules[]`` as a typed value, and its
RFC 5545 form (an ``RRULE`` value) that CalDAV and Google store as they are.

Cronofy's alpha reference (docs.cronofy.com/developers/api-alpha/recurring-events/) names
``frequency`` (daily, weekly, monthly, yearly), ``interval`` and ``by_day`` (weekly rules
only, full lower-case weekday names); the PHP SDK's smoke test sends ``count``. ``until``
(a Date or a Time, the last day an occurrence may start on) is Calgate's reading of the
same model. Weeks start on Monday, RFC 5545's default (``WKST=MO``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Frequency = Literal["daily", "weekly", "monthly", "yearly"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                  "sunday"]
FREQUENCIES: tuple[Frequency, ...] = ("daily", "weekly", "monthly", "yearly")
WEEKDAYS: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday",
                                 "saturday", "sunday")
ICAL_DAYS = {day: day[:2].upper() for day in WEEKDAYS}  # monday -> MO


@dataclass(frozen=True, slots=True)
class RecurrenceRule:
    """One rule: every ``interval`` days/weeks/months/years from the event's start, on
    ``by_day`` (weekly only; empty: the start's weekday), ending after ``count``
    occurrences or on ``until`` (inclusive), or never."""

    frequency: Frequency
    interval: int = 1
    count: int | None = None
    until: date | datetime | None = None  # a date, or an aware UTC datetime
    by_day: tuple[Weekday, ...] = ()

    def __post_init__(self) -> None:
        if self.frequency not in FREQUENCIES:
            raise ValueError(f"unknown frequency {self.frequency!r}")
        if self.interval < 1:
            raise ValueError("interval must be at least 1")
        if self.count is not None and self.until is not None:
            raise ValueError("a rule ends by count or by until, not both")
        if self.by_day and self.frequency != "weekly":
            raise ValueError("by_day is only for weekly rules")

    def last_day(self, start: date | datetime, tzid: str) -> date | None:
        """The last local day an occurrence may start on (None: ``until`` not given)."""
        if self.until is None:
            return None
        if isinstance(self.until, datetime):
            if isinstance(start, datetime):
                return self.until.astimezone(_zone(tzid)).date()
            return self.until.date()
        return self.until

    def rrule(self, start: date | datetime, tzid: str) -> str:
        """The RFC 5545 s3.3.10 value (``FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE``) for an event
        starting at ``start`` in ``tzid``. UNTIL is a DATE for all-day events and a UTC
        DATE-TIME for timed ones (s3.3.10: it must match DTSTART's type)."""
        parts = [f"FREQ={self.frequency.upper()}"]
        if self.interval != 1:
            parts.append(f"INTERVAL={self.interval}")
        if self.count is not None:
            parts.append(f"COUNT={self.count}")
        last = self.last_day(start, tzid)
        if last is not None:
            parts.append("UNTIL=" + _until(last, start, tzid))
        if self.by_day:
            parts.append("BYDAY=" + ",".join(ICAL_DAYS[d] for d in self.by_day))
        parts.append("WKST=MO")
        return ";".join(parts)

    def to_stored(self) -> dict[str, object]:
        """Cronofy's wire shape, also the form sealed into the outbox."""
        stored: dict[str, object] = {"frequency": self.frequency, "interval": self.interval}
        if self.count is not None:
            stored["count"] = self.count
        if self.until is not None:
            stored["until"] = self.until.isoformat()
        if self.by_day:
            stored["by_day"] = list(self.by_day)
        return stored

    @classmethod
    def from_stored(cls, stored: dict[str, object]) -> RecurrenceRule:
        until = stored.get("until")
        return cls(
            frequency=_frequency(str(stored["frequency"])),
            interval=int(str(stored.get("interval") or 1)),
            count=int(str(stored["count"])) if stored.get("count") is not None else None,
            until=_when(str(until)) if until else None,
            by_day=tuple(_weekday(str(d)) for d in _listed(stored.get("by_day"))))


def _until(last: date, start: date | datetime, tzid: str) -> str:
    if not isinstance(start, datetime):
        return last.strftime("%Y%m%d")
    # The last moment of that local day: an occurrence starting any time on it is kept.
    local_end = datetime.combine(last + timedelta(days=1), time(), _zone(tzid))
    return (local_end.astimezone(UTC) - timedelta(seconds=1)).strftime("%Y%m%dT%H%M%SZ")


def _zone(tzid: str) -> ZoneInfo:
    try:
        return ZoneInfo(tzid)
    except (KeyError, ValueError, OSError):
        return ZoneInfo("UTC")


def _when(value: str) -> date | datetime:
    return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)


def _listed(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _frequency(value: str) -> Frequency:
    for known in FREQUENCIES:
        if known == value:
            return known
    raise ValueError(f"unknown frequency {value!r}")


def _weekday(value: str) -> Weekday:
    for known in WEEKDAYS:
        if known == value:
            return known
    raise ValueError(f"unknown weekday {value!r}")
