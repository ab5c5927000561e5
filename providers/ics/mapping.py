"""Pure conversion of iCalendar (RFC 5545) components into the normalised model."""

from __future__ import annotations

import hashlib
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from icalendar import Calendar as ICalendar
from icalendar import Component
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from ..model import (
    Event,
    EventStatus,
    FreeBusyBlock,
    FreeBusyStatus,
    Participation,
    Person,
    TimeWindow,
    Transparency,
    When,
)

_STATUS: dict[str, EventStatus] = {
    "CONFIRMED": "confirmed", "TENTATIVE": "tentative", "CANCELLED": "cancelled"}
_PARTSTAT: dict[str, Participation] = {
    "NEEDS-ACTION": "needs_action", "ACCEPTED": "accepted", "DECLINED": "declined",
    "TENTATIVE": "tentative"}
# Feeds regenerate DTSTAMP ("when this file was generated") on every request, which would
# make every fetch look like a change; the digest leaves those lines out.
_TEXT_ESCAPE = re.compile(r"\\([\\;,nN])")
_DTSTAMP_LINE = re.compile(rb"^DTSTAMP[;:][^\r\n]*\r?\n", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """Calendar-level facts from the feed's VCALENDAR properties."""

    name: str | None = None  # X-WR-CALNAME
    tzid: str | None = None  # X-WR-TIMEZONE, as an IANA name


def calendar_id_for(url: str) -> str:
    """The feed's one calendar id: stable for a URL, across processes and restarts."""
    return "ics_" + hashlib.sha256(url.encode()).hexdigest()[:24]


def content_digest(body: bytes) -> str:
    """SHA-256 of the feed without its DTSTAMP lines."""
    return hashlib.sha256(_DTSTAMP_LINE.sub(b"", body)).hexdigest()


def iana_tzid(name: str | None) -> str | None:
    """``name`` as an IANA zone (Outlook's Windows names are translated), else None."""
    if not name:
        return None
    name = str(name).strip()
    candidate = WINDOWS_TO_OLSON.get(name, name)
    try:
        zoneinfo.ZoneInfo(candidate)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return None
    return "Etc/UTC" if candidate in ("UTC", "Etc/UTC", "Z", "GMT") else candidate


def unescape_text(raw: str) -> str:
    """RFC 5545 s3.3.11 TEXT unescaping, for the X- properties icalendar keeps raw."""
    return _TEXT_ESCAPE.sub(lambda m: "\n" if m[1] in "nN" else m[1], raw)


def feed_info(cal: ICalendar) -> FeedInfo:
    """NAME (RFC 7986) or X-WR-CALNAME, and X-WR-TIMEZONE."""
    raw = cal.get("NAME") or cal.get("X-WR-CALNAME")
    name = unescape_text(str(raw)).strip() if raw else ""
    return FeedInfo(name=name or None, tzid=iana_tzid(cal.get("X-WR-TIMEZONE")))


def _text(component: Component, name: str) -> str:
    value = component.get(name)
    if isinstance(value, list):  # repeated where it should not be: keep the first
        value = value[0] if value else None
    return "" if value is None else str(value)


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def to_utc(value: date | datetime) -> When:
    """Aware datetimes in UTC; floating ones are read as UTC (the feed's X-WR-TIMEZONE has
    already been applied by then); dates stay dates."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def zone_of(value: date | datetime, tzid_param: object = None) -> str | None:
    """The IANA zone a time was written in: its ZoneInfo key, else its TZID parameter."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        return None
    zone: tzinfo = value.tzinfo
    key = getattr(zone, "key", None) or getattr(zone, "zone", None)
    return iana_tzid(key) or iana_tzid(str(tzid_param) if tzid_param else None) or (
        "Etc/UTC" if zone.utcoffset(value) is not None and zone.tzname(value) == "UTC"
        else None)


def person(address: object, default: Participation) -> Person | None:
    """An ATTENDEE or ORGANIZER (a vCalAddress with CN and PARTSTAT parameters)."""
    email = str(address or "").strip()
    if email.lower().startswith("mailto:"):
        email = email[len("mailto:"):]
    if not email:
        return None
    params = getattr(address, "params", {})
    name = str(params.get("CN", "")).strip() or None
    partstat = str(params.get("PARTSTAT", "")).upper()
    return Person(email=email, display_name=name,
                  status=_PARTSTAT.get(partstat, default if not partstat else "unknown"))


def categories(component: Component) -> tuple[str, ...]:
    names: list[str] = []
    for prop in _as_list(component.get("CATEGORIES")):
        names.extend(str(c).strip() for c in getattr(prop, "cats", [prop]) if str(c).strip())
    return tuple(names)


def transparency(component: Component) -> Transparency:
    value = _text(component, "TRANSP").upper()
    return "transparent" if value == "TRANSPARENT" else "opaque"  # OPAQUE is the default


def status(component: Component) -> EventStatus:
    value = _text(component, "STATUS").upper()
    return _STATUS.get(value, "unknown") if value else "confirmed"


@dataclass(frozen=True, slots=True)
class _Time:
    """A DTSTART/DTEND/RECURRENCE-ID value with the TZID it was written with."""

    value: date | datetime
    tzid: object = None

    @property
    def zone(self) -> str | None:
        return zone_of(self.value, self.tzid)


def _time(component: Component, name: str) -> _Time | None:
    prop = component.get(name)
    value = getattr(prop, "dt", None)
    if not isinstance(value, date):  # absent, or a PERIOD/DURATION where a time belongs
        return None
    return _Time(value, getattr(prop, "params", {}).get("TZID"))


def _end(start: When, dtend: _Time | None) -> When:
    end = dtend.value if dtend is not None else start
    if not isinstance(start, datetime) and isinstance(end, datetime):
        end = end.date()  # an all-day start with a timed end: keep the whole-day shape
    if isinstance(start, datetime) and not isinstance(end, datetime):
        end = datetime(end.year, end.month, end.day, tzinfo=UTC)
    result = to_utc(end)
    if not isinstance(start, datetime) and result <= start:
        return start + timedelta(days=1)  # DTEND on or before an all-day DTSTART: one day
    return result if result >= start else start


def instance_key(uid: str, recurrence_id: date | datetime) -> str:
    """``uid@original start``: the same instance keeps its key when it is moved."""
    return f"{uid}@{to_utc(recurrence_id).isoformat()}"


def to_event(component: Component, uid: str, recurring: bool) -> Event:
    """One expanded occurrence (as recurring-ical-events returns it) as an Event."""
    dtstart = _time(component, "DTSTART")
    if dtstart is None:
        raise ValueError(f"event {uid} has no DTSTART")
    dtend = _time(component, "DTEND")
    recurrence = _time(component, "RECURRENCE-ID")
    modified = _time(component, "LAST-MODIFIED")
    start = to_utc(dtstart.value)
    organizer = component.get("ORGANIZER")
    attendees = (person(a, "needs_action") for a in _as_list(component.get("ATTENDEE")))
    return Event(
        resource_id=uid,
        instance_id=instance_key(uid, recurrence.value) if recurring and recurrence else uid,
        start=start, end=_end(start, dtend),
        summary=_text(component, "SUMMARY"), description=_text(component, "DESCRIPTION"),
        location=_text(component, "LOCATION"),
        start_tzid=dtstart.zone, end_tzid=(dtend or dtstart).zone,
        transparency=transparency(component), status=status(component),
        attendees=tuple(p for p in attendees if p is not None),
        organizer=person(organizer, "unknown") if organizer is not None else None,
        recurring=recurring,
        private=_text(component, "CLASS").upper() in ("PRIVATE", "CONFIDENTIAL"),
        categories=categories(component), url=_text(component, "URL") or None,
        upstream_updated=_aware(modified.value) if modified is not None else None,
    )


def _aware(value: date | datetime) -> datetime | None:
    result = to_utc(value)
    return result if isinstance(result, datetime) else None


def as_utc_datetime(value: date | datetime) -> datetime:
    """An aware UTC datetime; dates are their UTC midnight (the window's reading)."""
    value = to_utc(value)
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def overlaps(event: Event, window: TimeWindow) -> bool:
    """Whether ``event`` is inside the half-open ``window``; a zero-length event counts
    at its start. All-day dates are read as UTC days, as the window is."""
    start, end = as_utc_datetime(event.start), as_utc_datetime(event.end)
    if end == start:
        return window.start <= start < window.end
    return start < window.end and end > window.start


def busy_blocks(events: Iterable[Event]) -> list[FreeBusyBlock]:
    """Free/busy computed from events: opaque ones that are not cancelled block."""
    blocks = []
    for event in events:
        if event.transparency == "transparent" or event.status == "cancelled":
            continue
        state: FreeBusyStatus = "tentative" if event.status == "tentative" else "busy"
        blocks.append(FreeBusyBlock(event.start, event.end, state))
    return blocks
