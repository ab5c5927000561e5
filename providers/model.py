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
    reminders_minutes: tuple[int, ...] = ()
    conferencing: bool = False  # ask the upstream for a video conference (a Google Meet)
    recurrence: RecurrenceRule | None = None  # one series upstream (capabilities)


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
