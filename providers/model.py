"""The normalised calendar model every provider maps to and from.

Times are timezone-aware datetimes in UTC, except all-day values (``date``, end exclusive).
The zone an event was written in is kept as an IANA ``tzid`` beside it. A *resource* is
what the upstream stores as one object (an iCalendar object with its overrides, a Google
event series); sync reports changes per resource, with the resource's instances expanded
inside the sync window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from .recurrence import RecurrenceRule

Transparency = Literal["opaque", "transparent", "unknown"]
# Cronofy's extended_transparency: the busy state in the words calendars show it.
ExtendedTransparency = Literal["opaque", "transparent", "tentative", "out_of_office",
                               "working_elsewhere"]
EventStatus = Literal["confirmed", "tentative", "cancelled", "unknown"]
Participation = Literal["needs_action", "accepted", "declined", "tentative", "unknown"]
FreeBusyStatus = Literal["busy", "tentative", "free", "unknown"]
When = datetime | date


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A half-open interval [start, end) of aware UTC datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimeWindow needs timezone-aware datetimes")
        if self.end <= self.start:
            raise ValueError("TimeWindow must end after it starts")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do, so callers branch on flags instead of NotImplementedError."""

    writable: bool = False
    free_busy: bool = False  # a native free/busy query upstream
    incremental_sync: bool = False
    native_push: bool = False
    server_side_expansion: bool = False
    create_calendar: bool = False
    participation_status: bool = False
    recurring_writes: bool = False  # put_event honours EventDraft.recurrence (one series)
    invitations: bool = True  # attendees on a written event are invited (False: refused)
    resources: bool = False  # lists the organisation's rooms (RoomDirectory.list_resources)


@dataclass(frozen=True, slots=True)
class Calendar:
    calendar_id: str  # stable upstream identifier (CalDAV href, Google id, …)
    name: str
    readonly: bool = False
    primary: bool = False
    color: str | None = None
    tzid: str | None = None


@dataclass(frozen=True, slots=True)
class ConferenceLink:
    """The app's own meeting link (Cronofy's ``conferencing.profile_id: "explicit"``): the
    provider writes it where its calendars keep a meeting link, and reads it back."""

    join_url: str  # https only
    description: str  # whose meeting it is, as the app names it ("Zoom")


@dataclass(frozen=True, slots=True)
class Resource:
    """A bookable room (or other resource) of the account's organisation: its calendar's
    address, which invites it to an event, and its name as the directory shows it."""

    email: str
    name: str


@dataclass(frozen=True, slots=True)
class Person:
    email: str
    display_name: str | None = None
    status: Participation = "needs_action"


@dataclass(frozen=True, slots=True)
class Event:
    """One instance (or a non-recurring event) as the mirror stores it."""

    resource_id: str  # the upstream object this instance belongs to (iCalendar UID, …)
    instance_id: str  # unique within the calendar: resource id plus the original start
    start: When
    end: When
    summary: str = ""
    description: str = ""
    location: str = ""
    start_tzid: str | None = None
    end_tzid: str | None = None
    transparency: Transparency = "opaque"
    status: EventStatus = "confirmed"
    participation_status: Participation = "unknown"
    attendees: tuple[Person, ...] = ()
    organizer: Person | None = None
    recurring: bool = False
    private: bool = False
    categories: tuple[str, ...] = ()
    url: str | None = None
    managed_key: str | None = None  # Calgate's key for events a client app created
    etag: str | None = None
    upstream_updated: datetime | None = None
    meeting_url: str | None = None  # the video conference link (a Google Meet), if any
    # Where the upstream has them: reminders (minutes before the start, in priority order;
    # None: the calendar's defaults or not known), the location's coordinates as Cronofy
    # sends them (strings), and the busy state in Cronofy's extended_transparency words.
    reminders: tuple[int, ...] | None = None
    geo: tuple[str, str] | None = None
    extended_transparency: ExtendedTransparency | None = None
    conference_name: str | None = None  # an app's own link (ConferenceLink): its description

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)


@dataclass(frozen=True, slots=True)
class EventDraft:
    """What a client app wants an event it manages to look like upstream."""

    managed_key: str  # stable and unique per calendar: written upstream for idempotency
    summary: str
    start: When
    end: When
    start_tzid: str = "Etc/UTC"
    end_tzid: str = "Etc/UTC"
    description: str = ""
    location: str = ""
    transparency: Transparency = "opaque"
    attendees: tuple[Person, ...] = ()
    url: str | None = None
    private: bool = False
    # Minutes before the start, in the client's priority order; None: the calendar's
    # defaults; (): no reminders at all.
    reminders_minutes: tuple[int, ...] | None = None
    conferencing: bool = False  # ask the upstream for a video conference (a Google Meet)
    # Reminders set when the event is created and never again (the owner may change them).
    reminders_create_only: bool = False
    extended_transparency: ExtendedTransparency | None = None  # None: from transparency
    color: str | None = None  # "#rrggbb"; None: the calendar's colour
    geo: tuple[str, str] | None = None  # (latitude, longitude) as the client sent them
    # People this write takes off the event: the upstream tells them (a cancellation).
    removed: tuple[Person, ...] = ()
    recurrence: RecurrenceRule | None = None  # one series upstream (capabilities)
    conference_link: ConferenceLink | None = None  # the app's own meeting link

    @property
    def busy_state(self) -> ExtendedTransparency:
        """The extended transparency to write: the client's, else its transparency's."""
        if self.extended_transparency is not None:
            return self.extended_transparency
        return "transparent" if self.transparency == "transparent" else "opaque"

    @property
    def notifies(self) -> bool:
        """Whether the write concerns anyone but the owner (invitations, updates, or the
        cancellation a removed guest receives)."""
        return bool(self.attendees or self.removed)

    def as_event(self, resource_id: str, etag: str | None) -> Event:
        """The event as the upstream now holds it (the mirror's read-your-writes row). The
        app's own meeting link is in the location when it gave none, as Cronofy writes it
        where a calendar has no conferencing field."""
        link = self.conference_link
        return Event(
            resource_id=resource_id, instance_id=resource_id, start=self.start, end=self.end,
            summary=self.summary, description=self.description,
            location=self.location or (link.join_url if link else ""),
            start_tzid=self.start_tzid, end_tzid=self.end_tzid,
            transparency=self.transparency, attendees=self.attendees, url=self.url,
            private=self.private, managed_key=self.managed_key, etag=etag,
            reminders=self.reminders_minutes, geo=self.geo,
            extended_transparency=self.busy_state,
            meeting_url=link.join_url if link else None,
            conference_name=link.description if link else None)


# The optional upsert fields a provider may be unable to carry upstream, as the rows of a
# provider's ``ProviderEntry.write_fields`` name them: the API refuses (422, naming the
# field) a write that uses one its calendar's provider does not declare, before accepting
# it. A field not listed here is written by every writable provider. To add a row: name it
# here, have the API's upsert report it (``EventUpsert.gated_fields``) and list it in the
# entries of the providers that can write it (providers/registry.py).
GATED_WRITE_FIELDS: dict[str, str] = {
    "color": "color",  # row -> the request field a 422 names
    "url": "url",
    "location.geo": "location",  # location.lat / location.long
    "extended_transparency.tentative": "extended_transparency",
    "extended_transparency.out_of_office": "extended_transparency",
    "extended_transparency.working_elsewhere": "extended_transparency",
}


@dataclass(frozen=True, slots=True)
class EventPatch:
    """Changes to an event a client app did not create (an external event): only the
    fields that are not None change upstream; everything else the event has stays as it is.
    ``start`` and ``end`` come together (both dates or both times), each with its zone."""

    summary: str | None = None
    description: str | None = None  # "" clears it
    location: str | None = None  # "" clears it
    start: When | None = None
    end: When | None = None
    start_tzid: str = "Etc/UTC"
    end_tzid: str = "Etc/UTC"
    transparency: Transparency | None = None

    @property
    def times(self) -> tuple[When, When] | None:
        """The new (start, end), checked like a draft's; None when the times stay."""
        if self.start is None and self.end is None:
            return None
        if self.start is None or self.end is None:
            raise ValueError("a patch moves start and end together")
        if isinstance(self.start, datetime) != isinstance(self.end, datetime):
            raise ValueError("start and end must both be dates or both be times")
        if self.end <= self.start:
            raise ValueError("an event must end after it starts")
        return self.start, self.end


@dataclass(frozen=True, slots=True)
class Written:
    """Where a write landed upstream."""

    resource_id: str
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class FreeBusyBlock:
    start: When
    end: When
    status: FreeBusyStatus = "busy"


@dataclass(frozen=True, slots=True)
class SyncCursor:
    """Opaque provider state for incremental sync (a sync token, ctag+etags, an ETag)."""

    value: str


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What changed in one calendar since a cursor.

    ``changed`` maps a resource id to *all* its instances inside the window (replace them);
    ``deleted`` lists resources that are gone. ``full`` is True when this is a complete
    listing (initial sync, or a resync after an expired cursor): every resource not in
    ``changed`` is then gone.
    """

    changed: dict[str, list[Event]] = field(default_factory=dict)
    deleted: tuple[str, ...] = ()
    cursor: SyncCursor | None = None
    full: bool = False


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """Who the credentials belong to: shown on the consent screen and as the profile name.

    ``name`` (the person's, not the address) and ``tzid`` (IANA) are the account's where the
    upstream says; ``service`` is Cronofy's ``provider_service`` when it depends on the
    account (a Google Workspace or a consumer account), else None: the registry entry's.
    """

    profile_name: str
    upstream_id: str
    name: str | None = None
    tzid: str | None = None
    service: str | None = None


@dataclass(frozen=True, slots=True)
class PushChannel:
    """An upstream push subscription on one calendar (a Google events.watch channel)."""

    channel_id: str  # ours, chosen when watching
    resource_id: str  # the upstream's name for the watched resource (needed to stop it)
    expires_at: datetime  # aware UTC: renew before this
    calendar_id: str


@dataclass(frozen=True, slots=True)
class PulledChanges:
    """What reading a pulled channel found: whether the calendar changed, and the channel
    to read next time (its ``resource_id`` carries the upstream's new position)."""

    changed: bool
    channel: PushChannel
