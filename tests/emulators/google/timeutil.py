"""Times as the Calendar API writes them (EventDateTime objects, RFC 3339 with
milliseconds) and recurrence expansion: RRULE/EXRULE/RDATE/EXDATE lines expanded in the
event's time zone, so 09:00 Europe/Berlin stays 09:00 local across a DST change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule

from .errors import invalid

When = datetime | date


@cache
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid(f"Invalid time zone definition: {name}", reason="timeZoneInvalid") \
            from None


def stamp(value: datetime) -> str:
    """``updated``/``created``: UTC with milliseconds, as Google writes them."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{value.microsecond // 1000:03d}Z"


def read_when(obj: Any, field: str, fallback_tz: str | None) -> When:
    """The start or end of an event: a date, or an aware datetime in its zone."""
    if not isinstance(obj, dict) or not (obj.get("date") or obj.get("dateTime")):
        raise invalid(f"Missing {field} time.", reason="required")
    if obj.get("date"):
        return date.fromisoformat(obj["date"])
    value = datetime.fromisoformat(str(obj["dateTime"]).replace("z", "Z"))
    tz = obj.get("timeZone") or None
    if value.tzinfo is None:
        if not tz:
            raise invalid(f"Missing time zone definition for {field} time.",
                          reason="timeZoneNotSpecified")
        return value.replace(tzinfo=zone(tz))
    return value.astimezone(zone(tz)) if tz else value


def write_when(value: When, tz: str | None) -> dict[str, str]:
    if not isinstance(value, datetime):
        return {"date": value.isoformat()}
    if tz:
        return {"dateTime": value.astimezone(zone(tz)).isoformat(), "timeZone": tz}
    return {"dateTime": value.isoformat()}


def event_zone(event: dict[str, Any], calendar_tz: str) -> str:
    return str((event.get("start") or {}).get("timeZone") or calendar_tz)


def as_utc(value: When, calendar_tz: str) -> datetime:
    """Where a value lies on the time line: all-day dates at midnight in the calendar's zone."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=zone(calendar_tz)
                    ).astimezone(UTC)


def suffix(original: When) -> str:
    """The instance id suffix: ``20270301T080000Z`` (timed, UTC) or ``20270301``."""
    if isinstance(original, datetime):
        return original.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return original.strftime("%Y%m%d")


# -- recurrence ---------------------------------------------------------------------------

def _dtstart(start: When, tz: str) -> datetime:
    if isinstance(start, datetime):
        return start.astimezone(zone(tz))
    return datetime(start.year, start.month, start.day)


def _date_values(line: str, tz: str, all_day: bool) -> list[datetime]:
    head, _, values = line.partition(":")
    params = dict(p.split("=", 1) for p in head.split(";")[1:] if "=" in p)
    where = zone(params["TZID"]) if "TZID" in params else zone(tz)
    out = []
    for raw in values.split(","):
        raw = raw.strip()
        if len(raw) == 8:
            day = datetime.strptime(raw, "%Y%m%d")
            out.append(day if all_day else day.replace(tzinfo=where))
        elif raw.endswith("Z"):
            moment = datetime.strptime(raw, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            out.append(moment.replace(tzinfo=None) if all_day else moment.astimezone(where))
        else:
            moment = datetime.strptime(raw, "%Y%m%dT%H%M%S")
            out.append(moment if all_day else moment.replace(tzinfo=where))
    return out


def rule_set(lines: list[str], start: When, tz: str) -> rrule.rruleset:
    """The recurrence of a master event, or ApiError 400 for a line Google would refuse."""
    all_day = not isinstance(start, datetime)
    dtstart = _dtstart(start, tz)
    rules = rrule.rruleset()
    rules.rdate(dtstart)  # the master's own start is always the first instance
    try:
        for line in lines:
            name = line.split(":", 1)[0].split(";", 1)[0].upper()
            if name in ("RRULE", "EXRULE"):
                parsed = rrule.rrulestr(line.split(":", 1)[1], dtstart=dtstart)
                (rules.rrule if name == "RRULE" else rules.exrule)(parsed)
            elif name in ("RDATE", "EXDATE"):
                for value in _date_values(line, tz, all_day):
                    (rules.rdate if name == "RDATE" else rules.exdate)(value)
            else:
                raise ValueError(name)
    except (ValueError, TypeError, KeyError):
        raise invalid("Invalid recurrence rule.") from None
    return rules


def _back(value: datetime, all_day: bool) -> When:
    return value.date() if all_day else value


def occurrences(lines: list[str], start: When, end: When, tz: str, calendar_tz: str,
                window: tuple[datetime, datetime] | None, limit: int,
                horizon: datetime) -> list[When]:
    """Original start of every instance overlapping ``window`` (UTC), or, without a window,
    the first ``limit`` instances starting before ``horizon``."""
    all_day = not isinstance(start, datetime)
    rules = rule_set(lines, start, tz)
    duration = _dtstart(end, tz) - _dtstart(start, tz)
    local = zone(calendar_tz)

    def bound(moment: datetime) -> datetime:
        return moment.astimezone(local).replace(tzinfo=None) if all_day else moment

    if window is None:
        found = rules.between(_dtstart(start, tz) - timedelta(seconds=1), bound(horizon))
        return [_back(v, all_day) for v in islice(found, limit)]
    low, high = bound(window[0]), bound(window[1])
    found = []
    # Lazily from the first start that can still overlap: an endless rule and a window
    # reaching to year 9999 (no timeMax) cost only the instances actually returned.
    for value in rules.xafter(low - duration, inc=True):
        if value >= high or len(found) >= limit:
            break
        if value + duration > low:
            found.append(_back(value, all_day))
    return found
