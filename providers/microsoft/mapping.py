"""Pure conversions from Graph's JSON to the normalised model (writing is in ``drafts``).

Resources and instances: a single event (``singleInstance``) is one resource with one
instance, both named by its id. A recurring series is one resource named by its
``seriesMaster``'s id; calendarView and its delta list the series' ``occurrence`` and
``exception`` items (an occurrence edited on its own becomes an exception under the same
id), each pointing at the master through ``seriesMasterId``. So instance ids are stable and
unique in the calendar. Renaming a series changes every occurrence's ``subject``: each one
comes back changed, carrying the new name, while an exception keeps its own fields.
https://learn.microsoft.com/graph/api/resources/event
https://learn.microsoft.com/graph/delta-query-events
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ..errors import Unavailable
from ..model import (
    Calendar,
    Event,
    ExtendedTransparency,
    FreeBusyBlock,
    FreeBusyStatus,
    Participation,
    Person,
    Resource,
    TimeWindow,
    Transparency,
)
from .payloads import (
    Attendee,
    GraphCalendar,
    GraphEvent,
    GraphRoom,
    ResponseStatus,
    ScheduleInformation,
)
from .times import iana_zone, overlaps, parse_local, read_when

# The managed event's client key, as a single-value extended property in the documented
# "String {GUID} Name <name>" form: the GUID is Calgate's own property set, fixed forever.
# https://learn.microsoft.com/graph/api/resources/singlevaluelegacyextendedproperty
PROPERTY_SET = "{8f4c2c6e-5d0a-4a7b-9a53-3e1b6c0d2a91}"
MANAGED_PROPERTY = f"String {PROPERTY_SET} Name calgateEventId"
# Graph returns extended properties only when asked for, by id.
EXPAND_MANAGED = f"singleValueExtendedProperties($filter=id eq '{MANAGED_PROPERTY}')"
TEAMS = "teamsForBusiness"
# calendarView/delta cannot $expand extended properties, but it returns every event's
# ``transactionId`` (set once at creation, never changed). A managed event's transactionId
# is this prefix and its managed key in unpadded base64url: stable per key (Graph's
# duplicate check on a retried create) and readable back from any listing.
# https://learn.microsoft.com/graph/api/event-delta (OData query parameters)
TRANSACTION_PREFIX = "calgate1."

# responseStatus.response -> Cronofy's participation status.
# https://learn.microsoft.com/graph/api/resources/responsestatus
ANSWERS: dict[str, Participation] = {
    "organizer": "accepted", "accepted": "accepted", "tentativelyAccepted": "tentative",
    "declined": "declined", "notResponded": "needs_action", "none": "needs_action"}
# showAs -> transparency: "free" and "workingElsewhere" leave the time open (getSchedule's
# availabilityView counts workingElsewhere as free too).
TRANSPARENCY: dict[str, Transparency] = {
    "free": "transparent", "workingElsewhere": "transparent", "tentative": "opaque",
    "busy": "opaque", "oof": "opaque"}
EXTENDED: dict[str, ExtendedTransparency] = {
    "free": "transparent", "workingElsewhere": "working_elsewhere", "tentative": "tentative",
    "busy": "opaque", "oof": "out_of_office"}
FREE_BUSY: dict[str, FreeBusyStatus] = {
    "free": "free", "workingElsewhere": "free", "tentative": "tentative", "busy": "busy",
    "oof": "busy"}
PRIVATE = frozenset({"private", "confidential"})
HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


# -- events -------------------------------------------------------------------------------

def resource_of(item: GraphEvent) -> str:
    """The resource an item belongs to: its series for an occurrence or exception."""
    if item.get("type") in ("occurrence", "exception") and item.get("seriesMasterId"):
        return item["seriesMasterId"]
    return item["id"]


def _person(raw: Attendee) -> Person:
    email = raw.get("emailAddress") or {}
    return Person(email.get("address", "").lower(), email.get("name") or None,
                  answer(raw.get("status")))


def answer(status: ResponseStatus | None) -> Participation:
    return ANSWERS.get((status or {}).get("response", ""), "needs_action")


def _participation(item: GraphEvent) -> Participation:
    if item.get("isOrganizer"):
        return "accepted"
    if "responseStatus" not in item:
        return "unknown"
    return answer(item.get("responseStatus"))


def transaction_id(managed_key: str) -> str:
    """The transactionId of a managed event's create: the key, recoverable."""
    encoded = base64.urlsafe_b64encode(managed_key.encode()).decode().rstrip("=")
    return TRANSACTION_PREFIX + encoded


def key_of_transaction(transaction: str | None) -> str | None:
    """The managed key a Calgate transactionId carries; None for any other (another app's,
    or none: Graph answers ``null`` for an event created without one)."""
    if not transaction or not transaction.startswith(TRANSACTION_PREFIX):
        return None
    encoded = transaction[len(TRANSACTION_PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        return raw.decode() or None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def managed_key(item: GraphEvent) -> str | None:
    """Calgate's key for a managed event: from the extended property when the answer
    expanded it (Graph may spell the id's GUID in another case, so the match ignores case),
    else from the transactionId, which every listing, delta included, carries."""
    for prop in item.get("singleValueExtendedProperties") or []:
        if prop.get("id", "").lower() == MANAGED_PROPERTY.lower():
            return prop.get("value")
    return key_of_transaction(item.get("transactionId"))


def meeting_url(item: GraphEvent) -> str | None:
    """The Teams (or other online meeting) join link, else an https ``locationUri`` (where
    an app's own link is written: see drafts._location)."""
    join = (item.get("onlineMeeting") or {}).get("joinUrl")
    if item.get("isOnlineMeeting") and join:
        return join
    uri = (item.get("location") or {}).get("locationUri") or ""
    linked = uri if uri.lower().startswith("https://") else None  # an app's own link
    return item.get("onlineMeetingUrl") or join or linked


def location_text(item: GraphEvent) -> str:
    single = (item.get("location") or {}).get("displayName") or ""
    if single:
        return single
    return "; ".join(loc["displayName"] for loc in item.get("locations") or []
                     if loc.get("displayName"))


def _updated(item: GraphEvent) -> datetime | None:
    text = item.get("lastModifiedDateTime")
    return parse_local(text) if text else None


def event_from_graph(item: GraphEvent) -> Event:
    """One Graph event (a single event, occurrence or exception) as a model Event."""
    all_day = bool(item.get("isAllDay"))
    organizer = (item.get("organizer") or {}).get("emailAddress") or {}
    return Event(
        resource_id=resource_of(item), instance_id=item["id"],
        start=read_when(item.get("start"), all_day), end=read_when(item.get("end"), all_day),
        summary=item.get("subject") or "", description=(item.get("body") or {}).get(
            "content") or "", location=location_text(item),
        start_tzid=None if all_day else iana_zone(item.get("originalStartTimeZone")),
        end_tzid=None if all_day else iana_zone(item.get("originalEndTimeZone")),
        transparency=TRANSPARENCY.get(item.get("showAs", ""), "unknown"),
        status="cancelled" if item.get("isCancelled") else "confirmed",
        participation_status=_participation(item),
        attendees=tuple(_person(a) for a in item.get("attendees") or []
                        if (a.get("emailAddress") or {}).get("address")),
        organizer=Person(organizer["address"].lower(), organizer.get("name") or None,
                         "accepted") if organizer.get("address") else None,
        recurring=item.get("type") in ("occurrence", "exception"),
        private=item.get("sensitivity") in PRIVATE,
        categories=tuple(item.get("categories") or ()),
        # Graph events have no URL of their own (webLink opens Outlook on the web: not
        # Cronofy's url, which is the one the client wrote).
        managed_key=managed_key(item),
        etag=item.get("@odata.etag") or item.get("changeKey"),
        upstream_updated=_updated(item), meeting_url=meeting_url(item),
        extended_transparency=EXTENDED.get(item.get("showAs", "")),
        reminders=reminders_of(item), geo=geo_of(item))


def reminders_of(item: GraphEvent) -> tuple[int, ...] | None:
    """Graph's one reminder; None when the answer does not say."""
    if "isReminderOn" not in item:
        return None
    if not item.get("isReminderOn"):
        return ()
    return (int(item.get("reminderMinutesBeforeStart") or 0),)


def geo_of(item: GraphEvent) -> tuple[str, str] | None:
    """location.coordinates as Cronofy's lat/long strings."""
    coordinates = (item.get("location") or {}).get("coordinates") or {}
    lat, long = coordinates.get("latitude"), coordinates.get("longitude")
    if lat is None or long is None:
        return None
    return _decimal(lat), _decimal(long)


def _decimal(value: float) -> str:
    return format(float(value), "g") if abs(float(value)) >= 1e-4 else "0"


def is_gone(item: GraphEvent) -> bool:
    """Removed from the view (``@removed``: deleted, or a cancelled occurrence) or cancelled
    by its organiser (``isCancelled``, left in an attendee's calendar): Calgate lists
    neither, as Cronofy does not."""
    return "@removed" in item or bool(item.get("isCancelled"))


@dataclass
class DeltaItems:
    """One round of calendarView/delta items sorted out.

    ``events``: the live instances inside the window, by resource. ``gone``: ids of removed
    or cancelled items (an instance or a whole single event: a removed item says no more).
    ``series``: the series that any item touched; an incremental round carries only the
    instances that changed, so the provider lists each again in full."""

    events: dict[str, list[Event]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    series: set[str] = field(default_factory=set)


def sort_delta(items: Iterable[GraphEvent], window: TimeWindow) -> DeltaItems:
    """Sort a delta round's items (every page of it) into :class:`DeltaItems`. A later
    item for the same id wins, as Graph's order is the order of changes."""
    latest: dict[str, GraphEvent] = {}
    for item in items:
        latest[item["id"]] = item
    out = DeltaItems()
    for item in latest.values():
        if item.get("type") == "seriesMaster":  # its instances come as their own items
            out.series.add(item["id"])
            continue
        if item.get("seriesMasterId"):
            out.series.add(item["seriesMasterId"])
        if is_gone(item):
            out.gone.add(item["id"])
            continue
        event = event_from_graph(item)
        if overlaps(event.start, event.end, window):
            out.events.setdefault(event.resource_id, []).append(event)
    return out


# -- calendars ----------------------------------------------------------------------------

def calendar_from_graph(entry: GraphCalendar) -> Calendar:
    """A Graph calendar: ``canEdit`` decides read-only, ``isDefaultCalendar`` primary,
    ``hexColor`` the colour (empty until the user picks one: then None)."""
    return Calendar(calendar_id=entry["id"], name=entry.get("name") or entry["id"],
                    readonly=not entry.get("canEdit", False),
                    primary=bool(entry.get("isDefaultCalendar")),
                    color=normalise_color(entry.get("hexColor")))


def normalise_color(color: str | None) -> str | None:
    if color and HEX_COLOR.fullmatch(color):
        return color.lower()
    return None


def calendar_owner(entry: GraphCalendar) -> str | None:
    """The mailbox that owns the calendar: getSchedule's ``schedules`` entry for it."""
    address = (entry.get("owner") or {}).get("address")
    return address.lower() if address else None


def teams_allowed(entry: GraphCalendar) -> bool:
    """Whether a Teams meeting may be added to events of this calendar (work or school
    accounts with Teams; personal accounts offer other providers or none)."""
    return TEAMS in (entry.get("allowedOnlineMeetingProviders") or [])


# -- free/busy ----------------------------------------------------------------------------

def zone_from_schedule(info: ScheduleInformation) -> str | None:
    """The mailbox's zone as IANA, from getSchedule's ``workingHours`` (the mailbox
    settings' zone, readable with Calendars.ReadBasic where ``/me/mailboxSettings`` would
    need MailboxSettings.Read); None when Graph names none or no zone IANA knows."""
    if info.get("error"):
        return None
    return iana_zone((info.get("workingHours") or {}).get("timeZone", {}).get("name"))


def busy_from_schedule(info: ScheduleInformation) -> list[FreeBusyBlock]:
    """getSchedule's scheduleItems as blocks; free and working-elsewhere time is left out.
    An ``error`` on the schedule (no such mailbox, no permission) raises."""
    error = info.get("error")
    if error:
        raise Unavailable(f"Microsoft Graph could not read free/busy of "
                          f"{info.get('scheduleId', '?')}: {error.get('responseCode', '')} "
                          f"{error.get('message', '')}".strip())
    blocks = []
    for item in info.get("scheduleItems") or []:
        status = FREE_BUSY.get(item.get("status", ""), "unknown")
        if status != "free":
            blocks.append(FreeBusyBlock(read_when(item.get("start"), False),
                                        read_when(item.get("end"), False), status))
    return blocks


def busy_from_view(items: Iterable[GraphEvent]) -> list[FreeBusyBlock]:
    """Blocks from calendarView items, where getSchedule is not offered (personal
    accounts): what shows as free, or is cancelled or removed, leaves the time open."""
    blocks = []
    for item in items:
        status = FREE_BUSY.get(item.get("showAs", ""), "unknown")
        if is_gone(item) or status == "free" or item.get("type") == "seriesMaster":
            continue
        all_day = bool(item.get("isAllDay"))
        blocks.append(FreeBusyBlock(read_when(item.get("start"), all_day),
                                    read_when(item.get("end"), all_day), status))
    return blocks


def resource_from_room(room: GraphRoom) -> Resource | None:
    """A Graph room as a room; None without an address to invite (a room hidden from the
    address list may come without one)."""
    email = room.get("emailAddress")
    if not email:
        return None
    return Resource(email, room.get("displayName") or email)
