"""Graph's dateTimeTimeZone values and time-zone names, to and from the model's UTC times.

Calgate asks Graph for UTC (``Prefer: outlook.timezone="UTC"``), so a timed value comes
back as a local-less ``dateTime`` with ``timeZone`` "UTC"; the zone the event was written
in is in ``originalStartTimeZone``/``originalEndTimeZone``, as a Windows name ("W. Europe
Standard Time"), an IANA name, or a ``tzone://Microsoft/…`` pseudo-name. Windows names map
to IANA through CLDR's windowsZones table as icalendar ships it (generated from CLDR, updated
with each release; a dependency already), never a hand-written table.
https://learn.microsoft.com/graph/api/resources/datetimetimezone
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from ..errors import InvalidInput
from ..model import TimeWindow, When
from .payloads import DateTimeTimeZone

UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Z", "tzone://Microsoft/Utc"})
FRACTION = re.compile(r"\.(\d{1,9})")


def iana_zone(name: str | None) -> str | None:
    """The IANA name for a Graph time-zone name (Windows or IANA), or None when it names
    none (a custom zone, an empty value, a name CLDR does not know)."""
    if not name:
        return None
    if name in UTC_NAMES:
        return "Etc/UTC"
    mapped = WINDOWS_TO_OLSON.get(name)
    if mapped:
        return mapped
    if name.startswith("tzone://"):  # tzone://Microsoft/Custom: the rule lives in Outlook
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def zone(tzid: str) -> ZoneInfo:
    """The ZoneInfo of an IANA (or Windows) name; InvalidInput when it names no zone."""
    name = iana_zone(tzid)
    if name is None:
        raise InvalidInput(f"unknown time zone {tzid!r}")
    return ZoneInfo(name)


def parse_local(text: str) -> datetime:
    """Graph's ``dateTime`` ("2024-05-01T09:00:00.0000000"): seven fractional digits cut
    to the six Python keeps. An offset, if Graph ever sends one, is kept."""
    trimmed = FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text.strip(), 1)
    try:
        return datetime.fromisoformat(trimmed.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"Microsoft Graph sent a malformed time {text!r}") from None


def read_when(value: DateTimeTimeZone | None, all_day: bool) -> When:
    """A dateTimeTimeZone as an aware UTC datetime, or a date for an all-day event.

    An all-day value is midnight in whatever zone it is labelled with; converting it would
    move the day, so its date part is taken as is."""
    if not value or not value.get("dateTime"):
        raise InvalidInput("Microsoft Graph sent an event without a start or end")
    moment = parse_local(value["dateTime"])
    if all_day:
        return moment.date()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(value.get("timeZone") or "UTC"))
    return moment.astimezone(UTC)


def write_when(value: When, tzid: str) -> DateTimeTimeZone:
    """A model time as a dateTimeTimeZone: local to ``tzid`` (so Outlook shows the zone the
    client chose), a date as midnight. UTC is written as Graph's own "UTC"."""
    if not isinstance(value, datetime):
        return {"dateTime": f"{value.isoformat()}T00:00:00", "timeZone": graph_zone(tzid)}
    if value.tzinfo is None:
        raise InvalidInput("event times must be timezone-aware")
    local = value.astimezone(zone(tzid)).replace(tzinfo=None)
    return {"dateTime": local.isoformat(timespec="seconds"), "timeZone": graph_zone(tzid)}


def graph_zone(tzid: str) -> str:
    """The name to send Graph: "UTC" for UTC, else the IANA name (Graph accepts IANA names
    besides Windows ones)."""
    name = iana_zone(tzid)
    if name is None:
        raise InvalidInput(f"unknown time zone {tzid!r}")
    return "UTC" if name == "Etc/UTC" else name


def utc_text(value: datetime) -> str:
    """A query-string time (calendarView's startDateTime/endDateTime)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_utc(value: When) -> datetime:
    """A model time as a UTC datetime (a date as its midnight in UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def overlaps(start: When, end: When, window: TimeWindow) -> bool:
    return as_utc(end) > window.start and as_utc(start) < window.end


def chunks(window: TimeWindow, span: timedelta) -> list[TimeWindow]:
    """``window`` cut into pieces no longer than ``span`` (getSchedule's 62-day limit)."""
    pieces, start = [], window.start
    while start < window.end:
        end = min(start + span, window.end)
        pieces.append(TimeWindow(start, end))
        start = end
    return pieces


def is_date(value: When) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)
