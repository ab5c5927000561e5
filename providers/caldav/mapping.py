"""Pure conversion between iCalendar (RFC 5545) objects and the normalised model.

Reading expands a stored object (a master VEVENT with RRULE/RDATE/EXDATE and its
RECURRENCE-ID overrides) into the instances inside a window with recurring-ical-events,
resolving TZID parameters against the object's VTIMEZONEs, so times are right on both
sides of a DST change (PEERS.md s2 rows 1 and 3). Writing builds a whole VCALENDAR for a
managed event. Nothing here does I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events

from ..errors import InvalidInput
from ..model import (
    Calendar,
    Event,
    EventDraft,
    EventPatch,
    EventStatus,
    FreeBusyBlock,
    Participation,
    Person,
    TimeWindow,
    When,
)
from .client import CollectionProps
from .fields import conference, css_color, geo_of, listed, reminders_of

PRODID = "-//Calgate//CalDAV adapter//EN"
# Written on every managed event: a retry or a resync recognises its own events by it.
MANAGED_KEY = "X-CALGATE-MANAGED-KEY"
UTC_TZIDS = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Z", "Zulu", "Etc/Zulu",
                       "Universal", "Etc/Universal"})
# Expand a little beyond the window, then place floating and all-day instances exactly.
EXPANSION_MARGIN = timedelta(days=1)
WRITE_PRIVILEGES = frozenset({"{DAV:}write", "{DAV:}write-content", "{DAV:}all", "{DAV:}bind"})

# RFC 7986 s5.9: COLOR is a CSS3 colour name. A client's hex colour is written as the
# nearest of CSS's sixteen basic names (and read back as that name's hex value).
PARTSTATS: dict[str, Participation] = {
    "NEEDS-ACTION": "needs_action", "ACCEPTED": "accepted", "DECLINED": "declined",
    "TENTATIVE": "tentative",
}
STATUSES: dict[str, EventStatus] = {
    "CONFIRMED": "confirmed", "TENTATIVE": "tentative", "CANCELLED": "cancelled",
}


@dataclass(frozen=True, slots=True)
class Resource:
    """One stored object: its UID and its instances inside the window."""

    uid: str
    events: list[Event]


# -- small conversions ----------------------------------------------------------------


def zone_named(tzid: str | None) -> tzinfo | None:
    """The zone for an IANA name; None for UTC, unknown or missing names."""
    if not tzid or tzid in UTC_TZIDS:
        return None
    try:
        return ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def to_utc(value: When, zone: tzinfo | None = None) -> When:
    """Aware UTC for date-times (floating ones are read in ``zone``, else UTC); dates stay."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone or UTC)
        return value.astimezone(UTC)
    return value


def _utc_point(value: When) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def overlaps(event: Event, window: TimeWindow) -> bool:
    """Does the instance touch the half-open window? (dates count from UTC midnight)"""
    start, end = _utc_point(event.start), _utc_point(event.end)
    if start == end:  # a zero-length event is inside when its moment is
        return window.start <= start < window.end
    return end > window.start and start < window.end


def _email(address: Any) -> str:
    text = str(address).strip()
    return text[7:] if text.lower().startswith("mailto:") else text


def _person(address: Any, default: Participation = "needs_action") -> Person:
    params = getattr(address, "params", {})
    partstat = str(params.get("PARTSTAT", "")).upper()
    status = PARTSTATS.get(partstat, "unknown") if partstat else default
    name = params.get("CN")
    return Person(_email(address), str(name) if name else None, status)


def _tzid(prop: Any, zone: tzinfo | None) -> str | None:
    value = getattr(prop, "dt", None)
    if not isinstance(value, datetime):
        return None
    tz = value.tzinfo or zone
    if tz is None or tz is UTC or (value.utcoffset() == timedelta(0)
                                   and getattr(tz, "key", "UTC") in UTC_TZIDS):
        return "Etc/UTC" if value.tzinfo is not None else None
    key = getattr(tz, "key", None) or getattr(prop, "params", {}).get("TZID")
    return str(key) if key else None


def _text_of(component: Any, name: str) -> str:
    value = component.get(name)
    return str(value) if value is not None else ""


def _categories(component: Any) -> tuple[str, ...]:
    return tuple(str(c) for prop in listed(component.get("CATEGORIES"))
                 for c in getattr(prop, "cats", [prop]))


def _end_of(component: Any, start: date | datetime) -> date | datetime:
    if component.get("DTEND") is not None:
        end: date | datetime = component["DTEND"].dt
        return end
    if component.get("DURATION") is not None:
        duration: timedelta = component["DURATION"].dt
        return start + duration
    return start if isinstance(start, datetime) else start + timedelta(days=1)


# -- reading --------------------------------------------------------------------------


def _participation(attendees: Iterable[Person], organizer: Person | None,
                   owner: frozenset[str]) -> Participation:
    for person in attendees:
        if person.email.lower() in owner:
            return person.status
    if organizer is not None and organizer.email.lower() in owner:
        return "accepted"  # the owner organises it
    return "unknown"


def _last_modified(component: Any) -> datetime | None:
    modified = component.get("LAST-MODIFIED")
    value = getattr(modified, "dt", None)
    return value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo else None


def _original_start(component: Any, start: When, zone: tzinfo | None) -> str:
    recurrence_id = component.get("RECURRENCE-ID")
    original = to_utc(recurrence_id.dt, zone) if recurrence_id is not None else start
    return original.isoformat()


def event_from_component(component: Any, *, uid: str, recurring: bool,
                         zone: tzinfo | None, owner: frozenset[str],
                         etag: str | None) -> Event:
    """One instance (an expanded occurrence or a plain VEVENT) as a model Event."""
    raw_start: date | datetime = component["DTSTART"].dt
    start, end = to_utc(raw_start, zone), to_utc(_end_of(component, raw_start), zone)
    attendees = tuple(_person(a) for a in listed(component.get("ATTENDEE")))
    organizer = (_person(component["ORGANIZER"], "unknown")
                 if component.get("ORGANIZER") is not None else None)
    key = component.get(MANAGED_KEY)
    transparent = _text_of(component, "TRANSP").upper() == "TRANSPARENT"
    meeting_url, conference_name = conference(component)
    return Event(
        resource_id=uid,
        instance_id=f"{uid}@{_original_start(component, start, zone)}" if recurring else uid,
        start=start, end=end,
        summary=_text_of(component, "SUMMARY"),
        description=_text_of(component, "DESCRIPTION"),
        location=_text_of(component, "LOCATION"),
        start_tzid=_tzid(component["DTSTART"], zone),
        end_tzid=_tzid(component.get("DTEND") or component["DTSTART"], zone),
        transparency="transparent" if transparent else "opaque",
        extended_transparency="transparent" if transparent else "opaque",
        status=STATUSES.get(_text_of(component, "STATUS").upper() or "CONFIRMED", "unknown"),
        participation_status=_participation(attendees, organizer, owner),
        attendees=attendees, organizer=organizer, recurring=recurring,
        private=_text_of(component, "CLASS").upper() in ("PRIVATE", "CONFIDENTIAL"),
        categories=_categories(component),
        url=_text_of(component, "URL") or None,
        managed_key=str(key) if key is not None else None,
        etag=etag,
        upstream_updated=_last_modified(component),
        reminders=reminders_of(component), geo=geo_of(component),
        meeting_url=meeting_url, conference_name=conference_name,
    )


def parse_resource(text: str, window: TimeWindow, *, zone: tzinfo | None = None,
                   owner: frozenset[str] = frozenset(), etag: str | None = None
                   ) -> Resource | None:
    """The VEVENT instances of one stored object inside ``window``; None for an object
    without events (a VTODO, a VJOURNAL). Raises ValueError for unparsable data."""
    calendar = icalendar.Calendar.from_ical(text)
    components = calendar.walk("VEVENT")
    uid = next((str(c["UID"]) for c in components if c.get("UID")), "")
    if not uid:
        return None
    recurring = any(c.get(name) is not None for c in components
                    for name in ("RRULE", "RDATE", "RECURRENCE-ID"))
    occurrences = recurring_ical_events.of(calendar).between(
        window.start - EXPANSION_MARGIN, window.end + EXPANSION_MARGIN)
    events = [event_from_component(o, uid=uid, recurring=recurring, zone=zone, owner=owner,
                                   etag=etag) for o in occurrences]
    events = sorted((e for e in events if overlaps(e, window)),
                    key=lambda e: _utc_point(e.start))
    return Resource(uid, events)


def uid_of(text: str) -> str | None:
    """The UID of a stored object's first VEVENT."""
    for component in icalendar.Calendar.from_ical(text).walk("VEVENT"):
        if component.get("UID"):
            return str(component["UID"])
    return None


def managed_key_of(text: str) -> str | None:
    for component in icalendar.Calendar.from_ical(text).walk("VEVENT"):
        if component.get(MANAGED_KEY) is not None:
            return str(component[MANAGED_KEY])
    return None


def sequence_of(text: str) -> int:
    sequences = [int(c.get("SEQUENCE", 0)) for c in
                 icalendar.Calendar.from_ical(text).walk("VEVENT")]
    return max(sequences, default=0)


def parse_free_busy(text: str) -> list[FreeBusyBlock]:
    """The busy periods of a VFREEBUSY (RFC 5545 s3.8.2.6); FBTYPE=FREE is left out."""
    blocks = []
    for component in icalendar.Calendar.from_ical(text).walk("VFREEBUSY"):
        for period in listed(component.get("FREEBUSY")):
            fbtype = str(period.params.get("FBTYPE", "BUSY")).upper()
            if fbtype == "FREE":
                continue
            start, end_or_duration = period.dt
            end = start + end_or_duration if isinstance(end_or_duration, timedelta) \
                else end_or_duration
            blocks.append(FreeBusyBlock(to_utc(start), to_utc(end),
                                        "tentative" if fbtype == "BUSY-TENTATIVE" else "busy"))
    return blocks


# -- calendars ------------------------------------------------------------------------


def calendar_tzid(props: CollectionProps) -> str | None:
    """The calendar's zone: calendar-timezone-id, else the TZID of calendar-timezone."""
    if props.timezone_id:
        return props.timezone_id
    if props.timezone:
        try:
            for tz in icalendar.Calendar.from_ical(props.timezone).walk("VTIMEZONE"):
                return str(tz["TZID"])
        except (ValueError, KeyError):
            return None
    return None


def normalise_color(color: str | None) -> str | None:
    """Apple's ``#RRGGBBAA`` as ``#RRGGBB``."""
    if not color:
        return None
    color = color.strip()
    if len(color) == 9 and color.startswith("#"):
        return color[:7]
    return color


def calendar_from_props(props: CollectionProps, *, primary: bool) -> Calendar:
    name = props.name or props.path.rstrip("/").rsplit("/", 1)[-1]
    readonly = props.privileges is not None and not props.privileges & WRITE_PRIVILEGES
    return Calendar(calendar_id=props.path, name=name, readonly=readonly, primary=primary,
                    color=normalise_color(props.color), tzid=calendar_tzid(props))


def holds_events(props: CollectionProps) -> bool:
    return props.is_calendar and (props.components is None or "VEVENT" in props.components)


def check_tzid(tzid: str) -> tzinfo | None:
    """The zone to write times in (None: UTC); InvalidInput for an unknown name."""
    if tzid in UTC_TZIDS:
        return None
    zone = zone_named(tzid)
    if zone is None:
        raise InvalidInput(f"unknown time zone {tzid!r}")
    return zone


def draft_times(draft: EventDraft) -> tuple[When, When]:
    """The draft's start and end, checked: both dates or both aware times, end after start."""
    start, end = draft.start, draft.end
    if isinstance(start, datetime) and isinstance(end, datetime):
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidInput("event times need a time zone")
        if end <= start:
            raise InvalidInput("an event must end after it starts")
        return start, end
    if isinstance(start, datetime) or isinstance(end, datetime):
        raise InvalidInput("start and end must both be dates or both be times")
    if end <= start:
        raise InvalidInput("an all-day event must end after it starts")
    return start, end


# -- writing --------------------------------------------------------------------------


def _text(calendar: icalendar.Calendar) -> str:
    data: bytes = calendar.to_ical()
    return data.decode()


def _timezone_component(zone: tzinfo, start: When, end: When) -> icalendar.Timezone:
    # Only the transitions around the event: a VTIMEZONE from 1970 to 2038 is ~10 KiB.
    first = date(start.year - 1, 1, 1)
    last = date(end.year + 2, 1, 1)
    return icalendar.Timezone.from_tzid(str(getattr(zone, "key", zone)), first_date=first,
                                        last_date=last)


def _attendee(person: Person) -> icalendar.vCalAddress:
    address = icalendar.vCalAddress(f"mailto:{person.email}")
    if person.display_name:
        address.params["CN"] = person.display_name
    address.params["ROLE"] = "REQ-PARTICIPANT"
    address.params["PARTSTAT"] = next(
        (k for k, v in PARTSTATS.items() if v == person.status), "NEEDS-ACTION")
    address.params["RSVP"] = "TRUE"
    return address


def build_event(draft: EventDraft, *, uid: str, stamp: datetime, sequence: int = 0,
                organizer: str | None = None, alarms: list[Any] | None = None) -> str:
    """A whole VCALENDAR for a managed event (RFC 5545 s3.6.1), VTIMEZONEs included.

    ``organizer`` (the owner's address) is written when there are attendees, as
    scheduling servers (RFC 6638) need it to send the invitations; such a server also sends
    the cancellation to an attendee an update leaves out (RFC 6638 s3.2.1.2), and Calgate
    leaves out only those the client removed. ``alarms`` (the stored object's) replace the
    draft's reminders, for an update whose reminders were create-only.
    """
    start, end = draft_times(draft)
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("sequence", sequence)
    event.add("summary", draft.summary)
    zones: dict[str, tzinfo] = {}
    for name, value, tzid in (("dtstart", start, draft.start_tzid),
                              ("dtend", end, draft.end_tzid)):
        zone = check_tzid(tzid) if isinstance(value, datetime) else None
        if isinstance(value, datetime):
            value = value.astimezone(zone or UTC)
        if zone is not None:
            zones[tzid] = zone
        event.add(name, value)
    link = draft.conference_link
    # The app's own meeting link is the location when it gave none (as Cronofy writes it),
    # and a CONFERENCE (RFC 7986 s5.11) that clients show as the meeting to join.
    location = draft.location or (link.join_url if link else "")
    for name, text in (("description", draft.description), ("location", location)):
        if text:
            event.add(name, text)
    if link is not None:
        event.add("conference", link.join_url, parameters={
            "VALUE": "URI", "FEATURE": "VIDEO", "LABEL": link.description})
    if draft.transparency != "unknown":  # the API refuses the busy states TRANSP lacks
        event.add("transp", draft.transparency.upper())
    if draft.color:
        event.add("color", css_color(draft.color))
    if draft.geo:
        event.add("geo", (float(draft.geo[0]), float(draft.geo[1])))
    if draft.private:
        event.add("class", "PRIVATE")
    if draft.url:
        event.add("url", draft.url)
    if draft.attendees and organizer:
        event.add("organizer", icalendar.vCalAddress(f"mailto:{organizer}"))
    for person in draft.attendees:
        event.add("attendee", _attendee(person))
    if draft.recurrence is not None:  # one object: the series (RFC 5545 s3.8.5.3)
        rule = draft.recurrence.rrule(start, draft.start_tzid)
        event.add("rrule", icalendar.vRecur.from_ical(rule))
    event.add(MANAGED_KEY, draft.managed_key)
    if alarms is not None:
        for kept in alarms:
            event.add_component(kept)
    wanted = draft.reminders_minutes if alarms is None else None
    for minutes in wanted or ():
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", draft.summary or "Reminder")
        alarm.add("trigger", timedelta(minutes=-minutes))
        event.add_component(alarm)
    for zone in zones.values():
        calendar.add_component(_timezone_component(zone, start, _series_end(draft, end)))
    calendar.add_component(event)
    return _text(calendar)


def _series_end(draft: EventDraft, end: When) -> When:
    """How far the VTIMEZONE must reach: a series' last day (ten years for an open one,
    or one ended by count; later occurrences fall back on the zone's last rule)."""
    rule = draft.recurrence
    if rule is None:
        return end
    last = rule.last_day(draft.start, draft.start_tzid)
    return last if last is not None and last > _day(end) else date(end.year + 10, 1, 1)


def _day(value: When) -> date:
    return value.date() if isinstance(value, datetime) else value


_PARTSTAT_OF: dict[Participation, str] = {v: k for k, v in PARTSTATS.items()}


def patch_object(text: str, patch: EventPatch, *, stamp: datetime) -> str:
    """The stored object with only the patch's properties replaced (RFC 5545 s3.6.1), its
    SEQUENCE raised and DTSTAMP renewed; everything else (attendees, alarms, X- properties)
    is kept byte for byte as far as icalendar round-trips it. A recurring object (an RRULE,
    RDATE or overrides) is refused: changing one component would not move its instances."""
    calendar = icalendar.Calendar.from_ical(text)
    components = calendar.walk("VEVENT")
    if len(components) != 1 or any(components[0].get(k) is not None
                                   for k in ("RRULE", "RDATE", "RECURRENCE-ID")):
        raise InvalidInput("the event is recurring: it is not edited here")
    event = components[0]
    for name, new in (("summary", patch.summary), ("description", patch.description),
                      ("location", patch.location)):
        if new is not None:
            event.pop(name, None)
            if new:
                event.add(name, new)
    times = patch.times
    if times is not None:
        _patch_times(calendar, event, times, patch)
    if patch.transparency is not None and patch.transparency != "unknown":
        event.pop("transp", None)
        event.add("transp", patch.transparency.upper())
    sequence = int(event.get("SEQUENCE", 0)) + 1
    for name, stamped in (("sequence", sequence), ("dtstamp", stamp.astimezone(UTC))):
        event.pop(name, None)
        event.add(name, stamped)
    return _text(calendar)


def _patch_times(calendar: icalendar.Calendar, event: Any, times: tuple[When, When],
                 patch: EventPatch) -> None:
    known = {str(c.get("TZID")) for c in calendar.walk("VTIMEZONE")}
    for name in ("dtstart", "dtend", "duration"):
        event.pop(name, None)
    for name, value, tzid in (("dtstart", times[0], patch.start_tzid),
                              ("dtend", times[1], patch.end_tzid)):
        zone = check_tzid(tzid) if isinstance(value, datetime) else None
        if isinstance(value, datetime):
            value = value.astimezone(zone or UTC)
        event.add(name, value)
        if zone is not None and tzid not in known:
            calendar.add_component(_timezone_component(zone, times[0], times[1]))
            known.add(tzid)


def parse_instance_id(resource_id: str, instance_id: str | None) -> When | None:
    """The original start an instance id names (None: the whole event)."""
    if instance_id is None or instance_id == resource_id:
        return None
    prefix = f"{resource_id}@"
    if not instance_id.startswith(prefix):
        raise InvalidInput(f"{instance_id!r} is not an instance of {resource_id!r}")
    text = instance_id[len(prefix):]
    try:
        return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{instance_id!r} names no instance start") from None


def _same_moment(value: date | datetime, wanted: When, zone: tzinfo | None) -> bool:
    if isinstance(value, datetime) != isinstance(wanted, datetime):
        return False
    return to_utc(value, zone) == to_utc(wanted)


def _override_for(calendar: icalendar.Calendar, master: Any, original: When,
                  zone: tzinfo | None) -> Any:
    """The RECURRENCE-ID override of ``original`` (RFC 5545 s3.8.4.4), made from the
    master if there is none yet."""
    for component in calendar.walk("VEVENT"):
        rid = component.get("RECURRENCE-ID")
        if rid is not None and _same_moment(rid.dt, original, zone):
            return component
    master_start: date | datetime = master["DTSTART"].dt
    duration = _end_of(master, master_start) - master_start
    if isinstance(original, datetime):
        local_zone = master_start.tzinfo if isinstance(master_start, datetime) else None
        moment = original.astimezone(local_zone or zone or UTC)
        if isinstance(master_start, datetime) and master_start.tzinfo is None:
            moment = moment.replace(tzinfo=None)  # a floating series keeps floating times
        start: date | datetime = moment
    else:
        start = original
    override = icalendar.Event()
    for name, value in master.property_items(recursive=False):
        if name not in ("BEGIN", "END", "RRULE", "RDATE", "EXDATE", "DTSTART", "DTEND",
                        "DURATION", "RECURRENCE-ID"):
            override.add(name, copy.deepcopy(value))  # the master's attendees stay as they are
    for alarm in master.subcomponents:
        override.add_component(copy.deepcopy(alarm))
    override.add("recurrence-id", start)
    override.add("dtstart", start)
    override.add("dtend", start + duration)
    calendar.add_component(override)
    return override


def set_participation(text: str, *, owner: frozenset[str], status: Participation,
                      original: When | None, zone: tzinfo | None = None) -> str:
    """The object with the owner's PARTSTAT set: on every component (``original`` None) or
    on the override of one instance. Raises InvalidInput when the owner is not invited."""
    if status not in _PARTSTAT_OF:
        raise InvalidInput(f"cannot answer an invitation with {status!r}")
    calendar = icalendar.Calendar.from_ical(text)
    components = calendar.walk("VEVENT")
    if original is not None:
        master = next((c for c in components if c.get("RECURRENCE-ID") is None), None)
        if master is None:
            raise InvalidInput("the event has no series to take an instance from")
        components = [_override_for(calendar, master, original, zone)]
    answered = False
    for component in components:
        for address in listed(component.get("ATTENDEE")):
            if _email(address).lower() in owner:
                address.params["PARTSTAT"] = _PARTSTAT_OF[status]
                address.params.pop("RSVP", None)
                answered = True
    if not answered:
        raise InvalidInput("the account owner is not an attendee of this event")
    return _text(calendar)
