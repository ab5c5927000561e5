"""Request bodies of the managed-availability endpoints (API.md s8.3), parsed into the
store's values; anything wrong is a 422 naming the field."""

from __future__ import annotations

from datetime import datetime

from ..domain.availability.rules import find_zone
from ..services.availability_rules import (
    MAX_WEEKLY_PERIODS,
    AvailabilityError,
    Period,
    Rule,
    parse_weekly_period,
)
from .params import InvalidParam, Params, parse_time

MAX_ID = 64


def app_id(params: Params, name: str) -> str:
    """An app's own id: ASCII, printable, 1 to 64 characters (Cronofy's rule)."""
    value = params.text(name, required=True)
    assert value is not None
    if len(value) > MAX_ID or not all(" " <= c <= "~" for c in value):
        raise InvalidParam(name, "invalid",
                           f"{name} must be printable ASCII of at most {MAX_ID} characters")
    return value


def rule_from(params: Params) -> Rule:
    rule_id = app_id(params, "availability_rule_id")
    tzid = params.tzid("tzid")
    calendar_ids = None
    if params.given("calendar_ids"):
        calendar_ids = params.strings("calendar_ids")
        if not calendar_ids:
            raise InvalidParam("calendar_ids", "invalid",
                               "calendar_ids, when given, must name at least one calendar")
    raw = params.raw("weekly_periods")
    if not isinstance(raw, list) or not raw:
        raise InvalidParam("weekly_periods", "required",
                           "weekly_periods must be a list of at least one period")
    if len(raw) > MAX_WEEKLY_PERIODS:
        raise InvalidParam("weekly_periods", "too_many",
                           f"a rule has at most {MAX_WEEKLY_PERIODS} weekly periods")
    try:
        periods = tuple(parse_weekly_period(item, f"weekly_periods[{i}]")
                        for i, item in enumerate(raw))
    except AvailabilityError as exc:
        raise InvalidParam(exc.field, exc.code, exc.description) from None
    return Rule(rule_id, tzid, calendar_ids, periods)


def period_from(params: Params) -> Period:
    period_id = app_id(params, "available_period_id")
    start, end = _moment(params, "start"), _moment(params, "end")
    if end <= start:
        raise InvalidParam("end", "invalid", "end must be after start")
    return Period(period_id, start, end)


def _moment(params: Params, name: str) -> datetime:
    """A Time, or ``{"time": Time, "tzid": zone}`` (the zone only says how the app sees it:
    the time is UTC either way)."""
    raw = params.raw(name)
    if isinstance(raw, dict):
        zone = raw.get("tzid")
        if zone is not None and (not isinstance(zone, str) or find_zone(zone) is None):
            raise InvalidParam(f"{name}.tzid", "invalid_tzid",
                               f"{name}.tzid must be a known IANA time zone identifier")
        raw = raw.get("time")
        name = f"{name}.time"
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidParam(name, "required", f"{name} must be a Time like "
                           "2026-11-19T15:30:00Z")
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise InvalidParam(name, "invalid_time",
                           f"{name} must be a Time like 2026-11-19T15:30:00Z ({exc})") from None
