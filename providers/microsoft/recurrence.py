"""A managed event's recurrence as Graph's ``patternedRecurrence`` (pattern + range).

https://learn.microsoft.com/graph/api/resources/patternedrecurrence
Weekly rules list their days (the start's weekday when the rule names none) and start the
week on Monday, as RRULE's default ``WKST=MO`` does for Google and CalDAV, so an
every-other-week series lands on the same weeks everywhere. Monthly and yearly rules repeat
on the start's day of the month (and month). The range starts on the start's local date in
its zone; ``until`` becomes an ``endDate`` (a date: Graph has no end time), ``count`` a
``numbered`` range.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..model import EventDraft
from ..recurrence import RecurrenceRule
from .times import graph_zone, zone

PATTERNS = {"daily": "daily", "weekly": "weekly", "monthly": "absoluteMonthly",
            "yearly": "absoluteYearly"}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def patterned_recurrence(draft: EventDraft) -> dict[str, Any] | None:
    """The ``recurrence`` of a create or PATCH body (None: a single event)."""
    rule = draft.recurrence
    if rule is None:
        return None
    first = _local_day(draft.start, draft.start_tzid)
    return {"pattern": _pattern(rule, first), "range": _range(rule, draft, first)}


def _local_day(value: date | datetime, tzid: str) -> date:
    if isinstance(value, datetime):
        return value.astimezone(zone(tzid)).date()
    return value


def _pattern(rule: RecurrenceRule, first: date) -> dict[str, Any]:
    pattern: dict[str, Any] = {"type": PATTERNS[rule.frequency], "interval": rule.interval}
    if rule.frequency == "weekly":
        pattern["daysOfWeek"] = list(rule.by_day or (WEEKDAYS[first.weekday()],))
        pattern["firstDayOfWeek"] = "monday"
    if rule.frequency in ("monthly", "yearly"):
        pattern["dayOfMonth"] = first.day
    if rule.frequency == "yearly":
        pattern["month"] = first.month
    return pattern


def _range(rule: RecurrenceRule, draft: EventDraft, first: date) -> dict[str, Any]:
    found: dict[str, Any] = {"startDate": first.isoformat(),
                             "recurrenceTimeZone": graph_zone(draft.start_tzid)}
    last = rule.last_day(draft.start, draft.start_tzid)
    if rule.count is not None:
        return {**found, "type": "numbered", "numberOfOccurrences": rule.count}
    if last is not None:
        return {**found, "type": "endDate", "endDate": last.isoformat()}
    return {**found, "type": "noEnd"}
