"""Graph's time values: ``{dateTime, timeZone}`` pairs (Windows or IANA zone names, read
through CLDR's table as shipped by icalendar), the ``Prefer: outlook.timezone`` output zone,
and recurrence expansion (patterns daily, weekly, absolute/relative monthly and yearly;
ranges endDate, noEnd, numbered)."""

from __future__ import annotations

import calendar as cal
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from .errors import GraphError

UTC = UTC
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
INDEXES = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
_PREFER_TZ = re.compile(r'outlook\.timezone="([^"]+)"')


def zone(name: str) -> ZoneInfo:
    if name in ("UTC", "tzone://Microsoft/Utc", "Etc/GMT", "GMT"):
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(WINDOWS_TO_OLSON.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        raise GraphError(400, "TimeZoneNotSupportedException",
                         f"A valid TimeZone value must be specified. The following TimeZone "
                         f"value is not supported: '{name}'.") from None


def parse_when(value: Any) -> tuple[datetime, str]:
    """A dateTimeTimeZone as an aware UTC datetime and the zone name it was given in."""
    if not isinstance(value, dict) or "dateTime" not in value:
        raise GraphError(400, "ErrorInvalidRequest", "dateTimeTimeZone expected")
    name = value.get("timeZone") or "UTC"
    text = str(value["dateTime"]).rstrip("Z")
    if "." in text:  # Graph writes seven fractional digits; Python reads six
        text = text[:text.index(".") + 7]
    try:
        naive = datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        raise GraphError(400, "ErrorInvalidRequest",
                         f"Cannot convert the literal '{value['dateTime']}' to a DateTime.") \
            from None
    return naive.replace(tzinfo=zone(name)).astimezone(UTC), name


def write_when(moment: datetime, tz_name: str) -> dict[str, str]:
    local = moment.astimezone(zone(tz_name))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": tz_name}


def prefer_tz(headers: dict[str, str]) -> str:
    """The output zone from ``Prefer: outlook.timezone="..."``; Graph's default is UTC."""
    found = _PREFER_TZ.search(headers.get("prefer", ""))
    if found is None:
        return "UTC"
    zone(found.group(1))  # an unknown zone is a 400, as in Graph
    return found.group(1)


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def parse_query_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise GraphError(400, "ErrorInvalidParameter",
                         f"The value '{text}' of parameter 'StartDateTime' is invalid.") \
            from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- recurrence ------------------------------------------------------------------------------

PATTERN_TYPES = ("daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly",
                 "relativeYearly")


def check_recurrence(recurrence: Any) -> None:
    """A patternedRecurrence as Graph accepts it (pattern + range), else its 400.
    https://learn.microsoft.com/graph/api/resources/patternedrecurrence"""
    pattern = recurrence.get("pattern") if isinstance(recurrence, dict) else None
    rng = recurrence.get("range") if isinstance(recurrence, dict) else None
    if not isinstance(pattern, dict) or not isinstance(rng, dict):
        raise _bad("A recurrence needs a pattern and a range.")
    if pattern.get("type") not in PATTERN_TYPES or int(pattern.get("interval") or 0) < 1:
        raise _bad("The recurrence pattern's type or interval is invalid.")
    if pattern["type"] in ("weekly", "relativeMonthly", "relativeYearly") and not \
            pattern.get("daysOfWeek"):
        raise _bad("daysOfWeek is required for this recurrence pattern.")
    if any(str(d).lower() not in WEEKDAYS for d in pattern.get("daysOfWeek") or []):
        raise _bad("daysOfWeek names an unknown day.")
    kind = rng.get("type")
    if kind not in ("endDate", "noEnd", "numbered") or not rng.get("startDate"):
        raise _bad("The recurrence range needs a type and a startDate.")
    if kind == "endDate" and (not rng.get("endDate") or rng["endDate"] < rng["startDate"]):
        raise _bad("The recurrence range's endDate must not be before its startDate.")
    if kind == "numbered" and int(rng.get("numberOfOccurrences") or 0) < 1:
        raise _bad("numberOfOccurrences must be at least 1.")


def _bad(message: str) -> GraphError:
    return GraphError(400, "ErrorInvalidRequest", message)


def occurrence_dates(recurrence: dict[str, Any], first: date, until: date) -> Iterator[date]:
    """The local dates of a series' occurrences from ``first`` up to ``until`` inclusive."""
    pattern, rng = recurrence["pattern"], recurrence["range"]
    start = date.fromisoformat(rng.get("startDate") or first.isoformat())
    end = date.fromisoformat(rng["endDate"]) if rng.get("type") == "endDate" else until
    limit = int(rng.get("numberOfOccurrences") or 0) if rng.get("type") == "numbered" else 0
    for count, day in enumerate(_candidates(pattern, start, min(end, until)), 1):
        yield day
        if limit and count >= limit:
            return


def _candidates(pattern: dict[str, Any], start: date, end: date) -> Iterator[date]:
    kind, interval = pattern.get("type"), max(1, int(pattern.get("interval") or 1))
    if kind == "daily":
        day = start
        while day <= end:
            yield day
            day += timedelta(days=interval)
    elif kind == "weekly":
        yield from _weekly(pattern, start, end, interval)
    elif kind in ("absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"):
        step = interval * (12 if kind.endswith("Yearly") else 1)
        month0 = start.year * 12 + start.month - 1
        if kind.endswith("Yearly"):
            month0 = start.year * 12 + int(pattern.get("month") or start.month) - 1
        while True:
            year, month = divmod(month0, 12)
            if date(year, month + 1, 1) > end:
                return
            for day in _in_month(pattern, kind, year, month + 1):
                if start <= day <= end:
                    yield day
            month0 += step
    else:
        raise GraphError(400, "ErrorInvalidRequest", f"Unsupported recurrence type {kind}")


def _weekly(pattern: dict[str, Any], start: date, end: date, interval: int) -> Iterator[date]:
    days = sorted(WEEKDAYS.index(d.lower()) for d in pattern.get("daysOfWeek") or [])
    days = days or [start.weekday()]
    first_day = WEEKDAYS.index((pattern.get("firstDayOfWeek") or "sunday").lower())
    week = start - timedelta(days=(start.weekday() - first_day) % 7)
    while week <= end:
        for offset in range(7):
            day = week + timedelta(days=offset)
            if day.weekday() in days and start <= day <= end:
                yield day
        week += timedelta(weeks=interval)


def _in_month(pattern: dict[str, Any], kind: str, year: int, month: int) -> list[date]:
    last = cal.monthrange(year, month)[1]
    if kind.startswith("absolute"):
        day = int(pattern.get("dayOfMonth") or 1)
        return [date(year, month, day)] if day <= last else []
    wanted = {WEEKDAYS.index(d.lower()) for d in pattern.get("daysOfWeek") or []}
    matching = [date(year, month, d) for d in range(1, last + 1)
                if date(year, month, d).weekday() in wanted]
    index = INDEXES.get(str(pattern.get("index") or "first"), 0)
    return [matching[index]] if matching and index < len(matching) else []


def at_local(day: date, clock: time, tz_name: str) -> datetime:
    return datetime.combine(day, clock).replace(tzinfo=zone(tz_name)).astimezone(UTC)
