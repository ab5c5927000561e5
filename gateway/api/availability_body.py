"""The body of ``POST /v1/availability`` (API.md s8.1) parsed into an engine ``Query``.

Every documented limit is a 422 naming the field. Accepted as the SDKs send them: ``buffer:
{}`` and ``start_interval: null`` (pycronofy), the legacy ``available_periods`` beside
``query_periods``, a bare group object for ``participants`` and bare strings as members.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..domain.availability.intervals import Span, seconds
from ..domain.availability.query import ALL, Buffer, Group, Member, Query, ResponseFormat
from .params import InvalidParam, Params, parse_bool, parse_time

MAX_GROUPS = 10
MAX_GROUP_MEMBERS = 10
MAX_MEMBERS = 50  # distinct members over all groups
MAX_PERIODS = 50  # query periods, and a member's own available periods
MAX_SPAN_DAYS = 35  # from the first query period's start to the last one's end
MAX_DURATION_MINUTES = 1440
MAX_BUFFER_MINUTES = 1440
START_INTERVALS = (5, 10, 15, 20, 30, 45, 60)  # minutes
MAX_RESULTS, DEFAULT_RESULTS = 512, 256
MAX_IDS = 50
FORMATS: tuple[ResponseFormat, ...] = ("periods", "slots", "overlapping_slots")
EXPLAIN_REACH = 86400  # seconds: explain_at may lie this far before the query periods
_DIGITS = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True, slots=True)
class Parsed:
    """The engine's query and Calgate's own flags."""

    query: Query
    tentative_busy: bool = True


def parse(params: Params) -> Parsed:
    if params.given("query_slots"):  # refused, never silently ignored
        raise _bad("query_slots", "query_slots is not supported: ask with query_periods",
                   "not_supported")
    duration = _minutes(params.raw("required_duration"), "required_duration",
                        1, MAX_DURATION_MINUTES, required=True)
    assert duration is not None
    fmt = params.text("response_format") or "periods"
    if fmt not in FORMATS:
        raise InvalidParam("response_format", "invalid",
                           "response_format must be periods, slots or overlapping_slots")
    query = Query(
        groups=_groups(params.raw("participants")), duration=duration,
        query_periods=_query_periods(params), buffer=_buffer(params.raw("buffer")),
        start_interval=_interval(params.raw("start_interval")),
        response_format=fmt,
        max_results=_max_results(params.raw("max_results")), explain_at=_explain(params))
    if query.explain_at is not None:
        start, end = query.window
        if not start - EXPLAIN_REACH <= query.explain_at < end:
            raise _bad("explain_at", "explain_at must lie within the query periods' span "
                                     "(or up to a day before it)")
    return Parsed(query, params.flag("calgate_tentative_busy", True))


def _bad(field: str, description: str, code: str = "invalid") -> InvalidParam:
    return InvalidParam(field, code, description)


def _minutes(value: Any, field: str, low: int, high: int, *, required: bool = False
             ) -> int | None:
    """A Duration ``{"minutes": n}`` (an integer, as pycronofy also sends) in seconds."""
    if value is None or value == [] or value == {}:
        if required:
            raise _bad(field, f"{field} must be specified", "required")
        return None
    count = value.get("minutes") if isinstance(value, dict) else value
    if isinstance(count, str) and _DIGITS.fullmatch(count.strip()):
        count = int(count)
    if isinstance(count, bool) or not isinstance(count, int) or not low <= count <= high:
        raise _bad(field, f'{field} must be {{"minutes": n}} with n from {low} to {high}')
    return count * 60


def _time(value: Any, field: str) -> int:
    if not isinstance(value, str):
        raise _bad(field, f"{field} must be a Time like 2014-08-05T14:30:00Z", "required")
    try:
        return seconds(parse_time(value))
    except ValueError as exc:
        raise _bad(field, f"{field} must be a Time like 2014-08-05T14:30:00Z ({exc})",
                   "invalid_time") from None


def _periods(value: Any, field: str) -> tuple[Span, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_PERIODS:
        raise _bad(field, f"{field} must be a list of 1 to {MAX_PERIODS} "
                          '{"start": Time, "end": Time}')
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise _bad(field, f'each of {field} must be {{"start": Time, "end": Time}}')
        start, end = _time(item.get("start"), f"{field}.start"), _time(item.get("end"),
                                                                        f"{field}.end")
        if end <= start:
            raise _bad(f"{field}.end", f"{field}.end must be after its start")
        out.append((start, end))
    return tuple(out)


def _query_periods(params: Params) -> tuple[Span, ...]:
    field = "query_periods" if params.given("query_periods") else "available_periods"
    if not params.given(field):
        raise _bad("query_periods", "query_periods must be specified", "required")
    periods = _periods(params.raw(field), field)
    if max(e for _, e in periods) - min(s for s, _ in periods) > MAX_SPAN_DAYS * 86400:
        raise _bad(field, f"{field} must lie within {MAX_SPAN_DAYS} days of each other")
    return periods


def _groups(value: Any) -> tuple[Group, ...]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_GROUPS:
        raise _bad("participants", f"participants must be a list of 1 to {MAX_GROUPS} groups",
                   "required" if value is None else "invalid")
    groups = tuple(_group(g) for g in value)
    if len({m.sub for g in groups for m in g.members}) > MAX_MEMBERS:
        raise _bad("participants", f"participants may name at most {MAX_MEMBERS} members")
    return groups


def _group(value: Any) -> Group:
    field = "participants.members"
    members = value.get("members") if isinstance(value, dict) else None
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_GROUP_MEMBERS:
        raise _bad(field, f"each group's members must be a list of 1 to "
                          f"{MAX_GROUP_MEMBERS} members")
    parsed = tuple(_member(m) for m in members)
    if len({m.sub for m in parsed}) != len(parsed):
        raise _bad(field, "a member may appear once in a group")
    assert isinstance(value, dict)
    required = value.get("required", ALL)
    if required != ALL:
        if isinstance(required, str) and _DIGITS.fullmatch(required.strip()):
            required = int(required)
        if isinstance(required, bool) or not isinstance(required, int) \
                or not 1 <= required <= len(parsed):
            raise _bad("participants.required",
                       '"required" must be "all" or a number from 1 to the group\'s size')
    return Group(parsed, required)


def _member(value: Any) -> Member:
    if isinstance(value, str):
        value = {"sub": value}
    sub = value.get("sub") if isinstance(value, dict) else None
    if not isinstance(sub, str) or not sub.strip() or len(sub) > 64:
        raise _bad("participants.members.sub", "each member must have a sub", "required")
    assert isinstance(value, dict)
    own = value.get("available_periods")
    managed = parse_bool(value.get("managed_availability", False))
    if managed is None:
        raise _bad("participants.members.managed_availability",
                   "managed_availability must be true or false")
    return Member(sub, _ids(value.get("calendar_ids"), "participants.members.calendar_ids"),
                  _periods(own, "participants.members.available_periods") if own else (),
                  managed, _rule_ids(value.get("availability_rule_ids")))


def _ids(value: Any, field: str) -> tuple[str, ...]:
    if value is None or value == []:
        return ()
    if not isinstance(value, list) or len(value) > MAX_IDS or not all(
            isinstance(i, str) and i and len(i) <= 64 for i in value):
        raise _bad(field, f"{field} must be a list of at most {MAX_IDS} identifiers")
    return tuple(dict.fromkeys(value))


def _rule_ids(value: Any) -> tuple[str, ...] | None:
    return None if value is None else _ids(value, "participants.members.availability_rule_ids")


def _buffer(value: Any) -> Buffer:
    if value is None or value == [] or value == {}:
        return Buffer()
    if not isinstance(value, dict):
        raise _bad("buffer", 'buffer must be {"before": Duration, "after": Duration}')
    return Buffer(_side(value.get("before"), "buffer.before"),
                  _side(value.get("after"), "buffer.after"))


def _side(value: Any, field: str) -> int:
    """``{"minutes": n}``, or ``{"minimum": {"minutes": n}, "maximum": …}``: the minimum
    (the engine never grows a buffer, so the maximum is only checked)."""
    if isinstance(value, dict) and ("minimum" in value or "maximum" in value):
        low = _minutes(value.get("minimum"), f"{field}.minimum", 0, MAX_BUFFER_MINUTES) or 0
        high = _minutes(value.get("maximum"), f"{field}.maximum", 0, MAX_BUFFER_MINUTES)
        if high is not None and high < low:
            raise _bad(f"{field}.maximum", f"{field}.maximum must not be below the minimum")
        return low
    return _minutes(value, field, 0, MAX_BUFFER_MINUTES) or 0


def _interval(value: Any) -> int | None:
    got = _minutes(value, "start_interval", 1, 60)
    if got is not None and got // 60 not in START_INTERVALS:
        raise _bad("start_interval", "start_interval must be {\"minutes\": n} with n one of "
                   + ", ".join(map(str, START_INTERVALS)))
    return got


def _max_results(value: Any) -> int:
    if value is None or value == "":
        return DEFAULT_RESULTS
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RESULTS:
        raise _bad("max_results", f"max_results must be a number from 1 to {MAX_RESULTS}")
    return value


def _explain(params: Params) -> int | None:
    if not params.flag("explain", False):
        return None
    if not params.given("explain_at"):
        raise _bad("explain_at", "explain_at (a Time) must be given with explain",
                   "required")
    return _time(params.raw("explain_at"), "explain_at")
