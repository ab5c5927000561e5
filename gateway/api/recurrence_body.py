"""The upsert body's ``recurrence`` (Cronofy's alpha ``recurrence.rules[]``) as a typed rule.

``{"rules": [{"frequency": "weekly", "interval": 2, "by_day": ["monday"], "count": 10}]}``;
``{"rules": []}`` (or ``null``) makes a single event. Every refusal is a 422 naming
``recurrence`` with what is wrong.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from providers.recurrence import FREQUENCIES, WEEKDAYS, RecurrenceRule

from .params import InvalidParam, parse_date, parse_time

MAX_INTERVAL = 999
MAX_COUNT = 1000  # occurrences; a longer series is an open-ended rule or an until date
SHAPE = ('recurrence is {"rules": [{"frequency": "daily" | "weekly" | "monthly" | '
         '"yearly", "interval"?, "count"?, "until"?, "by_day"?}]}')


def recurrence_rule(value: Any, start: date | datetime) -> RecurrenceRule | None:
    """The one rule of ``value`` (None: not recurring), checked against the event's start."""
    if value is None:
        return None
    rules = value.get("rules") if isinstance(value, dict) else None
    if not isinstance(rules, list):
        raise _invalid(SHAPE)
    if not rules:
        return None
    if len(rules) > 1:
        raise _invalid("recurrence takes one rule (calendars keep one per event)")
    rule = rules[0]
    if not isinstance(rule, dict):
        raise _invalid(SHAPE)
    frequency = rule.get("frequency")
    if frequency not in FREQUENCIES:
        raise _invalid("recurrence.rules.frequency is daily, weekly, monthly or yearly")
    by_day = _by_day(rule.get("by_day"), frequency)
    count = _whole(rule.get("count"), "count", MAX_COUNT)
    until = _until(rule.get("until"), start)
    if count is not None and until is not None:
        raise _invalid("a recurrence rule ends by count or by until, not both")
    return RecurrenceRule(frequency=frequency, by_day=by_day, count=count, until=until,
                          interval=_whole(rule.get("interval"), "interval", MAX_INTERVAL) or 1)


def _invalid(description: str) -> InvalidParam:
    return InvalidParam("recurrence", "invalid", description)


def _by_day(value: Any, frequency: str) -> tuple[Any, ...]:
    if value is None or value == []:
        return ()
    if frequency != "weekly":
        raise _invalid("recurrence.rules.by_day is only valid for weekly rules")
    if not isinstance(value, list) or any(d not in WEEKDAYS for d in value):
        raise _invalid("recurrence.rules.by_day lists weekdays: monday … sunday")
    return tuple(d for d in WEEKDAYS if d in value)  # one of each, in week order


def _whole(value: Any, name: str, most: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise _invalid(f"recurrence.rules.{name} is a whole number from 1 to {most}")
    return value


def _until(value: Any, start: date | datetime) -> date | datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid("recurrence.rules.until is a Date or a Time")
    try:
        until: date | datetime = (parse_date(value.strip()) if len(value.strip()) == 10
                                  else parse_time(value))
    except ValueError:
        raise _invalid("recurrence.rules.until is a Date (2025-06-30) or a Time "
                       "(2025-06-30T09:00:00Z)") from None
    first = start.date() if isinstance(start, datetime) else start
    last = until.date() if isinstance(until, datetime) else until
    if last < first:
        raise _invalid("recurrence.rules.until is before the event's start")
    return until
