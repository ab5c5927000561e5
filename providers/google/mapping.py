"""Pure conversions between Google's Calendar JSON and the normalised model.

Resources and instances: a Google event that is not recurring is one resource with one
instance, both named by its event id. A recurring series is one resource named by the
series' (master's) event id; its instances are Google's instance events, named by their
own ids (``<series id>_<original start>``), which stay the same while the instance moves.
So instance ids are stable and unique in the calendar, and a managed event's instance id is
its resource id, as the outbox writes it into the mirror.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import InvalidInput
from ..model import (
    AccountInfo,
    Calendar,
    Event,
    EventDraft,
    EventPatch,
    EventStatus,
    FreeBusyBlock,
    Participation,
    Person,
    Resource,
    TimeWindow,
    When,
)
from .client import (
    Attendee,
    CalendarEntry,
    CalendarResource,
    EventDateTime,
    FreeBusyAnswer,
    GoogleEvent,
    Reminders,
)

MANAGED_KEY = "calgateKey"  # extendedProperties.private key carrying EventDraft.managed_key
# Google events have no coordinates: a managed event's (Cronofy's location.lat/long) are
# kept beside its key, as "lat,long" ("" when it has none), so reads give them back.
GEO_KEY = "calgateGeo"
# Google's event colours (colors.get, "event"): a client's hex colour becomes the nearest.
# https://developers.google.com/calendar/api/v3/reference/colors
EVENT_COLORS: dict[str, str] = {
    "1": "#a4bdfc", "2": "#7ae7bf", "3": "#dbadff", "4": "#ff887c", "5": "#fbd75b",
    "6": "#ffb878", "7": "#46d6db", "8": "#e1e1e1", "9": "#5484ed", "10": "#51b749",
    "11": "#dc2127"}
# An app's own meeting link (EventDraft.conference_link) and its description. Google keeps
# third-party conferenceData only from a Calendar add-on's conference solution (addOn), which
# a plain API client cannot write; so the link goes in the location (as Cronofy writes it)
# and these private properties, from which reads recover it.
# https://developers.google.com/calendar/api/guides/create-events#conferencing
CONFERENCE_URL, CONFERENCE_NAME = "calgateConferenceUrl", "calgateConferenceName"
READ_ONLY_ROLES = frozenset({"reader", "freeBusyReader"})
STATUSES: dict[str, EventStatus] = {"confirmed": "confirmed", "tentative": "tentative",
                                    "cancelled": "cancelled"}
ANSWERS: dict[str, Participation] = {"needsAction": "needs_action", "accepted": "accepted",
                                     "declined": "declined", "tentative": "tentative"}
MAX_REMINDERS = 5  # Google keeps at most five reminder overrides
MAX_REMINDER_MINUTES = 40_320  # four weeks
COLOR = re.compile(r"#[0-9a-fA-F]{6}")


# -- times --------------------------------------------------------------------------------

def read_when(value: EventDateTime | None, fallback_tz: str | None) -> tuple[When, str | None]:
    """An EventDateTime as (aware UTC datetime or date, IANA zone or None)."""
    if not value:
        raise InvalidInput("Google sent an event without a start or end")
    if "date" in value:
        return date.fromisoformat(value["date"]), None
    moment = datetime.fromisoformat(value["dateTime"].replace("z", "Z"))
    tzid = value.get("timeZone") or fallback_tz
    if moment.tzinfo is None:  # never from Google; tolerated with the zone it names
        moment = moment.replace(tzinfo=_zone(tzid or "UTC"))
    return moment.astimezone(UTC), tzid


def write_when(value: When, tzid: str) -> EventDateTime:
    if not isinstance(value, datetime):
        return {"date": value.isoformat()}
    if value.tzinfo is None:
        raise InvalidInput("event times must be timezone-aware")
    return {"dateTime": value.astimezone(_zone(tzid)).isoformat(), "timeZone": tzid}


def _zone(tzid: str) -> ZoneInfo:
    try:
        return ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {tzid!r}") from None


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def overlaps(event: Event, window: TimeWindow) -> bool:
    return _utc(event.end) > window.start and _utc(event.start) < window.end


def _utc(value: When) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


# -- reading ------------------------------------------------------------------------------

def _person(raw: Attendee) -> Person:
    return Person(raw.get("email", "").lower(), raw.get("displayName") or None,
                  ANSWERS.get(raw.get("responseStatus", ""), "needs_action"))


def _participation(event: GoogleEvent) -> Participation:
    for attendee in event.get("attendees") or []:
        if attendee.get("self"):
            return ANSWERS.get(attendee.get("responseStatus", ""), "unknown")
    if (event.get("organizer") or {}).get("self"):
        return "accepted"  # the account organises it
    return "unknown"


def meeting_url(event: GoogleEvent) -> str | None:
    """The Meet link (``hangoutLink``), the conference's video entry point, or an app's own
    link (its private property)."""
    if event.get("hangoutLink"):
        return event["hangoutLink"]
    for entry in (event.get("conferenceData") or {}).get("entryPoints") or []:
        if entry.get("entryPointType") == "video" and entry.get("uri"):
            return str(entry["uri"])
    return _private(event).get(CONFERENCE_URL) or None


def conference_name(event: GoogleEvent) -> str | None:
    """The description of an app's own link, when that is the event's meeting link."""
    private = _private(event)
    if private.get(CONFERENCE_URL) and meeting_url(event) == private[CONFERENCE_URL]:
        return private.get(CONFERENCE_NAME) or None
    return None


def _private(event: GoogleEvent) -> dict[str, str]:
    return (event.get("extendedProperties") or {}).get("private") or {}


def resource_of(event: GoogleEvent) -> str:
    """The resource an item belongs to: its series for an instance, else itself."""
    return event.get("recurringEventId") or event["id"]


def event_from_google(event: GoogleEvent, calendar_tz: str | None) -> Event:
    """One Google event (or instance) as a model Event."""
    start, start_tzid = read_when(event.get("start"), calendar_tz)
    end, end_tzid = read_when(event.get("end"), calendar_tz)
    organizer = event.get("organizer")
    private = event.get("extendedProperties", {}).get("private") or {}
    transparent = event.get("transparency") == "transparent"
    return Event(
        resource_id=resource_of(event), instance_id=event["id"], start=start, end=end,
        summary=event.get("summary", ""), description=event.get("description", ""),
        location=event.get("location", ""), start_tzid=start_tzid, end_tzid=end_tzid,
        transparency="transparent" if transparent else "opaque",
        extended_transparency="transparent" if transparent else "opaque",
        status=STATUSES.get(event.get("status", "confirmed"), "unknown"),
        participation_status=_participation(event),
        attendees=tuple(_person(a) for a in event.get("attendees") or []),
        organizer=_person(organizer) if organizer and organizer.get("email") else None,
        recurring="recurringEventId" in event,
        private=event.get("visibility") in ("private", "confidential"),
        url=(event.get("source") or {}).get("url") or None,
        managed_key=private.get(MANAGED_KEY), etag=event.get("etag"),
        upstream_updated=datetime.fromisoformat(event["updated"].replace("Z", "+00:00"))
        if event.get("updated") else None,
        meeting_url=meeting_url(event), reminders=reminders_of(event),
        geo=geo_of(private.get(GEO_KEY)), conference_name=conference_name(event))


def reminders_of(event: GoogleEvent) -> tuple[int, ...] | None:
    """The event's own reminder minutes in Google's order; None for the calendar's
    defaults."""
    reminders = event.get("reminders") or Reminders()
    if reminders.get("useDefault", True):
        return None
    return tuple(int(r["minutes"]) for r in reminders.get("overrides") or []
                 if "minutes" in r)


def geo_of(text: str | None) -> tuple[str, str] | None:
    lat, comma, long = (text or "").partition(",")
    return (lat, long) if comma and lat and long else None


def color_id(color: str) -> str:
    """The event colour nearest to ``color`` (``#rrggbb``) in Google's palette."""
    wanted = _rgb(color)
    return min(EVENT_COLORS, key=lambda k: sum(
        (a - b) ** 2 for a, b in zip(_rgb(EVENT_COLORS[k]), wanted, strict=True)))


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def calendar_from_entry(entry: CalendarEntry) -> Calendar:
    return Calendar(calendar_id=entry["id"],
                    name=entry.get("summaryOverride") or entry.get("summary") or entry["id"],
                    readonly=entry.get("accessRole", "reader") in READ_ONLY_ROLES,
                    primary=bool(entry.get("primary")),
                    color=normalise_color(entry.get("backgroundColor")),
                    tzid=entry.get("timeZone"))


# Consumer Google accounts; any other domain signing in to Google Calendar is a Google
# Workspace ("G Suite") account, Cronofy's ``provider_service`` ``gsuite``.
CONSUMER_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def account_from_primary(entry: CalendarEntry) -> AccountInfo:
    """Whose account this is, from the primary calendar's list entry alone (the only scope
    Calgate always holds is calendar.calendarlist.readonly: no profile or email scope).

    The primary calendar's id is the account's address and its ``timeZone`` the account's
    zone (https://developers.google.com/calendar/api/v3/reference/calendarList). Its
    ``summary`` is the owner's name on newer accounts and the address on older ones: only a
    summary that is not an address is taken as the name.
    """
    address = entry["id"]
    summary = (entry.get("summary") or "").strip()
    domain = address.rpartition("@")[2].lower()
    return AccountInfo(profile_name=address, upstream_id=address,
                       name=summary if summary and "@" not in summary else None,
                       tzid=entry.get("timeZone") or None,
                       service="google" if domain in CONSUMER_DOMAINS else "gsuite")


def normalise_color(color: str | None) -> str | None:
    if color and COLOR.fullmatch(color):
        return color.lower()
    return None


# -- writing ------------------------------------------------------------------------------

def managed_event_id(managed_key: str) -> str:
    """The event id a managed event is created under: base32hex (Google's id alphabet)
    of a digest of the key, the same for every retry, so a repeated insert answers 409
    instead of making a second event."""
    digest = hashlib.sha256(managed_key.encode()).digest()
    return "cg" + base64.b32hexencode(digest).decode().rstrip("=").lower()[:40]


def conference_request_id(managed_key: str) -> str:
    """Stable per managed event: Google ignores a createRequest whose requestId it has
    seen, so a retried or repeated write keeps the same Meet."""
    return "calgate-" + hashlib.sha256(("meet\0" + managed_key).encode()).hexdigest()[:32]


def _reminders(minutes: Sequence[int] | None) -> dict[str, Any]:
    """The client's reminders in its priority order (never sorted): Google keeps five
    overrides, so the first five. None: the calendar's defaults."""
    if minutes is None:
        return {"useDefault": True}
    chosen = list(dict.fromkeys(min(max(int(m), 0), MAX_REMINDER_MINUTES) for m in minutes))
    return {"useDefault": False, "overrides": [{"method": "popup", "minutes": m}
                                               for m in chosen[:MAX_REMINDERS]]}


def body_from_draft(draft: EventDraft, *, creating: bool = False) -> dict[str, Any]:
    """The full set of fields Calgate owns on a managed event (a PATCH with all of them
    replaces what an earlier version wrote; ``None`` clears a field). Reminders set with
    ``reminders_create_only`` are left out of an update: they are the owner's since."""
    if isinstance(draft.start, datetime) != isinstance(draft.end, datetime):
        raise InvalidInput("start and end must both be dates or both be times")
    link = draft.conference_link
    body: dict[str, Any] = {
        "summary": draft.summary, "description": draft.description or None,
        "location": draft.location or (link.join_url if link else None),
        "start": write_when(draft.start, draft.start_tzid),
        "end": write_when(draft.end, draft.end_tzid),
        # Google has only busy and free: the API refuses the other states for Google.
        "transparency": "transparent" if draft.busy_state in ("transparent",
                                                              "working_elsewhere")
        else "opaque",
        "visibility": "private" if draft.private else "default",
        "attendees": [{"email": p.email, **({"displayName": p.display_name}
                                            if p.display_name else {})}
                      for p in draft.attendees],
        "reminders": _reminders(draft.reminders_minutes),
        "colorId": color_id(draft.color) if draft.color else None,
        "source": {"url": draft.url, "title": draft.summary} if draft.url else None,
        "extendedProperties": {"private": {
            MANAGED_KEY: draft.managed_key,
            GEO_KEY: ",".join(draft.geo) if draft.geo else ""}},
        "status": "confirmed",
        # One series: Google expands it (RFC 5545 lines; null makes it a single event again).
        # https://developers.google.com/calendar/api/concepts/events-calendars#recurring_events
        "recurrence": ["RRULE:" + draft.recurrence.rrule(draft.start, draft.start_tzid)]
        if draft.recurrence else None,
    }
    if draft.reminders_create_only and not creating:
        del body["reminders"]
    if link is not None:
        body["extendedProperties"]["private"] |= {CONFERENCE_URL: link.join_url,
                                                  CONFERENCE_NAME: link.description}
    if draft.conferencing:
        body["conferenceData"] = {"createRequest": {
            "requestId": conference_request_id(draft.managed_key),
            "conferenceSolutionKey": {"type": "hangoutsMeet"}}}
    return body


def body_from_patch(patch: EventPatch) -> dict[str, Any]:
    """Only the fields an external event's patch sets (events.patch leaves the rest alone;
    ``None`` clears a text field)."""
    body: dict[str, Any] = {}
    if patch.summary is not None:
        body["summary"] = patch.summary
    for name in ("description", "location"):
        value = getattr(patch, name)
        if value is not None:
            body[name] = value or None
    times = patch.times
    if times is not None:
        body["start"] = write_when(times[0], patch.start_tzid)
        body["end"] = write_when(times[1], patch.end_tzid)
    if patch.transparency is not None:
        body["transparency"] = "transparent" if patch.transparency == "transparent" \
            else "opaque"
    return body


def insert_body(draft: EventDraft) -> dict[str, Any]:
    """:func:`body_from_draft` for events.insert: no nulls, the deterministic id."""
    body = {k: v for k, v in body_from_draft(draft, creating=True).items() if v is not None}
    body["id"] = managed_event_id(draft.managed_key)
    return body


def send_updates(draft: EventDraft) -> str:
    """Google emails guests only when asked to (``sendUpdates``). Cronofy has no flag for
    it; Calgate asks for ``all`` when the write concerns guests: invitations and updates
    to the attendees, and the cancellation a guest the client removed (``attendees.reject``)
    receives. A write of an event without guests, which removed nobody, sends nothing.
    https://developers.google.com/calendar/api/v3/reference/events/patch"""
    return "all" if draft.notifies else "none"


def answer_of(status: Participation) -> str:
    for google, ours in ANSWERS.items():
        if ours == status:
            return google
    raise InvalidInput(f"cannot answer an invitation with {status!r}")


# -- free/busy ----------------------------------------------------------------------------

def chunks(window: TimeWindow, span: timedelta) -> list[TimeWindow]:
    """``window`` cut into pieces no longer than ``span`` (freebusy.query's limit)."""
    pieces, start = [], window.start
    while start < window.end:
        end = min(start + span, window.end)
        pieces.append(TimeWindow(start, end))
        start = end
    return pieces


def busy_blocks(answer: FreeBusyAnswer, calendar_ids: Iterable[str]
                ) -> dict[str, list[FreeBusyBlock]]:
    """Busy periods per calendar; the first per-calendar error raises (see provider)."""
    out: dict[str, list[FreeBusyBlock]] = {}
    for calendar_id in calendar_ids:
        entry = answer.get("calendars", {}).get(calendar_id, {})
        out[calendar_id] = [FreeBusyBlock(read_when({"dateTime": b["start"]}, None)[0],
                                          read_when({"dateTime": b["end"]}, None)[0])
                            for b in entry.get("busy") or []]
    return out


def join(blocks: list[FreeBusyBlock]) -> list[FreeBusyBlock]:
    """Blocks sorted, a block that a chunk boundary cut in two made whole again."""
    out: list[FreeBusyBlock] = []
    for block in sorted(blocks, key=lambda b: _utc(b.start)):
        if out and _utc(block.start) <= _utc(out[-1].end):
            last = out[-1]
            out[-1] = FreeBusyBlock(last.start, max(last.end, block.end, key=_utc),
                                    last.status)
        else:
            out.append(block)
    return out


def resource_from_directory(item: CalendarResource) -> Resource | None:
    """A Workspace calendar resource as a room (None without an address to invite: the
    Directory API always sends one, but nothing here depends on it)."""
    email = item.get("resourceEmail")
    if not email:
        return None
    return Resource(email, item.get("resourceName") or item.get("generatedResourceName")
                    or email)
