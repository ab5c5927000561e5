"""Cronofy-style request parameters (API.md s1.3, s1.4 and s13 "Transport / parsing").

Cronofy behaves like a Rails app and the SDKs depend on it: the query string and a JSON or
form body are merged (the body wins, the query fills in what the body lacks), booleans come
as ``true``/``True``/``1``, arrays as repeated ``name[]=…`` or JSON arrays, and unknown keys
are ignored. Invalid values answer 422 ``{"errors": {field: [{key, description}]}}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, available_timezones

from starlette.requests import Request

from .errors import ApiError

# Every time a client sends must lie in these years: wide enough for any calendar, and far
# enough from Python's datetime limits (years 1..9999) that no offset, time zone, sync
# window or longest-event arithmetic on it can overflow, in the store or in a provider.
MIN_DATE, MAX_DATE = date(1900, 1, 1), date(2199, 12, 31)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# 2014-08-05T14:30:00Z, …+00:00, …UTC (pycronofy), "2014-08-05 14:30:00Z" (C# SDK).
_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d{1,9}))?"
                   r"\s*(Z|UTC|[+-]\d{2}:?\d{2})", re.IGNORECASE)


class InvalidParam(ApiError):
    """A parameter the API refuses: 422 with Cronofy's ``errors`` body."""

    def __init__(self, field: str, code: str, description: str) -> None:
        super().__init__(422, {"errors": {field: [
            {"key": f"errors.{code}", "description": description}]}})
        self.field = field
        self.code = code


def parse_bool(value: object) -> bool | None:
    """``true``/``false`` in any case, ``1``/``0``, JSON booleans; None when it is none."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def parse_date(value: str) -> date:
    """``YYYY-MM-DD``; ValueError otherwise."""
    if not _DATE.fullmatch(value):
        raise ValueError("not a Date")
    day = date.fromisoformat(value)
    if not MIN_DATE <= day <= MAX_DATE:
        raise ValueError(f"outside {MIN_DATE}..{MAX_DATE}, the dates Calgate supports")
    return day


def parse_time(value: str) -> datetime:
    """A Time (API.md s1.4) as an aware UTC datetime; ValueError with the reason otherwise."""
    match = _TIME.fullmatch(value.strip())
    if match is None:
        raise ValueError("not a Time")
    day, hour, minute, second, fraction, zone = match.groups()
    if fraction and int(fraction):
        raise ValueError("non-zero milliseconds are not supported")
    naive = datetime.combine(parse_date(day), time(int(hour), int(minute), int(second or 0)))
    return naive.replace(tzinfo=_offset(zone)).astimezone(UTC)


def _offset(zone: str) -> timezone:
    if zone.upper() in ("Z", "UTC"):
        return UTC
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if delta >= timedelta(hours=24):
        raise ValueError("offset out of range")
    return timezone(sign * delta)


@cache
def _known_zones() -> frozenset[str]:
    # An allow-list rather than ZoneInfo(key) on anything a client sends: no file-system
    # lookups for arbitrary keys.
    return frozenset(available_timezones())


def find_zone(name: str) -> ZoneInfo | None:
    """The IANA zone called ``name``, or None."""
    return ZoneInfo(name) if name in _known_zones() else None


class Params:
    """Merged request parameters; accessors validate and raise :class:`InvalidParam`."""

    def __init__(self, values: Mapping[str, Any], nulls: Iterable[str] = ()) -> None:
        self.values = {k: v for k, v in values.items() if v is not None}
        # Keys the body sent as an explicit JSON null (an upsert's ``"url": null`` clears).
        self.nulls = frozenset(k for k in nulls if k not in self.values)

    @classmethod
    def merge(cls, query: Iterable[tuple[str, str]], body: Mapping[str, Any]) -> Params:
        merged = _collect(query)
        normalised = _normalise(body)
        merged.update({k: v for k, v in normalised.items() if v is not None})
        return cls(merged, (k for k, v in normalised.items() if v is None))

    def raw(self, name: str) -> Any:
        return self.values.get(name)

    def given(self, name: str) -> bool:
        """Whether the request carried ``name`` at all (a null included)."""
        return name in self.values or name in self.nulls

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if isinstance(value, str) and value.strip():
            return value
        if value is None or isinstance(value, str):
            if required:
                raise InvalidParam(name, "required", f"{name} must be specified")
            return None
        raise InvalidParam(name, "invalid", f"{name} must be a string")

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        parsed = parse_bool(value)
        if parsed is None:
            raise InvalidParam(name, "invalid_boolean", f"{name} must be true or false")
        return parsed

    def strings(self, name: str) -> tuple[str, ...]:
        """An array (``name[]=a&name[]=b`` or a JSON array); a single string is one item."""
        value = self.values.get(name)
        if value is None or value == "":
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise InvalidParam(name, "invalid", f"{name} must be a list of identifiers")
        return tuple(dict.fromkeys(items))

    def time(self, name: str) -> datetime | None:
        """A Time, in UTC."""
        value = self.text(name)
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError as exc:
            raise InvalidParam(name, "invalid_time",
                               f"{name} must be a Time like 2014-08-05T14:30:00Z ({exc})"
                               ) from None

    def moment(self, name: str, zone: ZoneInfo) -> datetime | None:
        """A Date (its midnight in ``zone``) or a Time, in UTC."""
        value = self.text(name)
        if value is None or not _DATE.fullmatch(value.strip()):
            return self.time(name)
        try:
            day = parse_date(value.strip())
        except ValueError as exc:
            raise InvalidParam(name, "invalid_date", f"{name} must be a valid Date ({exc})"
                               ) from None
        return datetime.combine(day, time(), zone).astimezone(UTC)

    def tzid(self, name: str = "tzid") -> str:
        value = self.text(name, required=True)
        assert value is not None
        if find_zone(value) is None:
            raise InvalidParam(name, "invalid_tzid",
                               f"{name} must be a known IANA time zone identifier")
        return value


async def read_params(request: Request) -> Params:
    """The query string merged with the request's JSON or form body (``{}`` on GET is fine)."""
    return Params.merge(request.query_params.multi_items(), await _body(request))


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return _collect(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    if kind == "multipart/form-data":
        form = await request.form()
        return _collect((k, v) for k, v in form.multi_items() if isinstance(v, str))
    if "json" not in kind and not raw.lstrip().startswith(b"{"):
        return {}  # a body we do not understand carries no parameters
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidParam("request", "invalid_json", "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidParam("request", "invalid_json", "the body must be a JSON object")
    return value


def _collect(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Query-style pairs to a dict: ``name[]`` keys become lists, other keys keep the last."""
    values: dict[str, Any] = {}
    for key, value in pairs:
        if key.endswith("[]"):
            items = values.setdefault(key[:-2], [])
            if isinstance(items, list):
                items.append(value)
            else:
                values[key[:-2]] = [value]
        else:
            values[key] = value
    return values


def _normalise(body: Mapping[str, Any]) -> dict[str, Any]:
    """JSON keys written as ``name[]`` mean ``name``."""
    return {(k[:-2] if k.endswith("[]") else k): v for k, v in body.items()}
