"""The emulator's world: users, calendars (with their ACL and each user's calendar-list
entry) and events, with the change sequence that sync tokens and watch channels key on.

Events are stored as Google writes them (the JSON resource). A recurring series is its
master plus exception objects keyed by instance id (``<master>_<original start>``), as in
Google; generated instances are rendered on the fly. Every change bumps the calendar's
sequence and stamps the object with it, so an incremental listing is "objects with a
sequence above the token's".
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

BASE32HEX = "0123456789abcdefghijklmnopqrstuv"


def new_id(length: int = 26) -> str:
    return "".join(secrets.choice(BASE32HEX) for _ in range(length))


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class User:
    email: str
    name: str
    tz: str


@dataclass
class Stored:
    """One event object (single, master or exception) and the change that last touched it."""

    resource: dict[str, Any]
    seq: int


@dataclass
class ListEntry:
    """A user's calendar-list entry for a calendar (colours and visibility are per user)."""

    background: str = "#9fe1e7"
    foreground: str = "#000000"
    color_id: str = "14"
    hidden: bool = False
    summary_override: str | None = None


@dataclass
class CalendarRecord:
    id: str
    owner: str
    summary: str
    tz: str
    description: str = ""
    created_by: str | None = None  # the client_id that made it (calendar.app.created)
    acl: dict[str, str] = field(default_factory=dict)  # email -> owner/writer/reader/...
    events: dict[str, Stored] = field(default_factory=dict)
    seq: int = 0
    updated: datetime = field(default_factory=now)
    deleted: bool = False

    def bump(self) -> int:
        self.seq += 1
        self.updated = now()
        return self.seq


@dataclass
class Group:
    """A Google group for freebusy.query (its calendars are its members')."""

    email: str
    members: list[str]


@dataclass
class SyncState:
    calendar_id: str
    seq: int
    epoch: int


@dataclass
class Page:
    """The rest of a listing already computed, so paging sees one consistent snapshot."""

    calendar_id: str
    items: list[dict[str, Any]]
    offset: int
    page_size: int
    tail: dict[str, Any]  # fields for the last page (nextSyncToken)


class World:
    """All state, guarded by one lock (request handlers run in threads)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.calendars: dict[str, CalendarRecord] = {}
        self.entries: dict[str, dict[str, ListEntry]] = {}  # user -> calendar id -> entry
        self.groups: dict[str, Group] = {}
        self.sync_epoch = 0
        self.sync_tokens: dict[str, SyncState] = {}
        self.pages: dict[str, Page] = {}
        self.on_change: Callable[[str], None] = lambda calendar_id: None

    # -- users and calendars --------------------------------------------------------------

    def add_user(self, email: str, name: str | None = None, tz: str = "UTC") -> User:
        email = email.lower()
        user = self.users.get(email)
        if user is None:
            user = self.users[email] = User(email, name or email.split("@")[0], tz)
            self.entries[email] = {}
            # Newer Google accounts title the primary calendar with the owner's name, older
            # ones with the address: a user added with a name gets the newer kind.
            self.add_calendar(email, name or email, tz, calendar_id=email)
        return user

    def add_calendar(self, owner: str, summary: str, tz: str, *,
                     calendar_id: str | None = None, created_by: str | None = None,
                     description: str = "") -> CalendarRecord:
        calendar_id = calendar_id or f"{new_id()}@group.calendar.google.com"
        record = CalendarRecord(calendar_id, owner, summary, tz, description, created_by,
                                acl={owner: "owner"})
        self.calendars[calendar_id] = record
        self.entries[owner][calendar_id] = ListEntry()
        return record

    def share(self, calendar_id: str, email: str, role: str) -> None:
        self.add_user(email)
        self.calendars[calendar_id].acl[email.lower()] = role
        self.entries[email.lower()].setdefault(calendar_id, ListEntry(background="#f691b2"))

    def calendar(self, user: str, calendar_id: str) -> CalendarRecord | None:
        """The calendar ``calendar_id`` ("primary" allowed) if ``user`` may see it."""
        if calendar_id == "primary":
            calendar_id = user
        record = self.calendars.get(calendar_id) or self.calendars.get(calendar_id.lower())
        if record is None or record.deleted or user not in record.acl:
            return None
        return record

    # -- sync tokens and pages ------------------------------------------------------------

    def issue_sync_token(self, calendar: CalendarRecord) -> str:
        token = "CP" + secrets.token_urlsafe(18)
        self.sync_tokens[token] = SyncState(calendar.id, calendar.seq, self.sync_epoch)
        return token

    def sync_state(self, token: str, calendar: CalendarRecord) -> SyncState | None:
        state = self.sync_tokens.get(token)
        if state is None or state.epoch != self.sync_epoch or state.calendar_id != calendar.id:
            return None
        return state

    def expire_sync_tokens(self) -> None:
        self.sync_epoch += 1
        self.sync_tokens.clear()

    def page(self, calendar_id: str, items: list[dict[str, Any]], page_size: int,
             tail: dict[str, Any]) -> dict[str, Any]:
        """The first page of ``items``; the rest is kept under ``nextPageToken``."""
        return self._slice(Page(calendar_id, items, 0, page_size, tail))

    def next_page(self, token: str, calendar_id: str) -> dict[str, Any] | None:
        state = self.pages.pop(token, None)
        if state is None or state.calendar_id != calendar_id:
            return None
        return self._slice(state)

    def _slice(self, state: Page) -> dict[str, Any]:
        end = state.offset + state.page_size
        body: dict[str, Any] = {"items": state.items[state.offset:end]}
        if end < len(state.items):
            token = secrets.token_urlsafe(16)
            self.pages[token] = Page(state.calendar_id, state.items, end, state.page_size,
                                     state.tail)
            body["nextPageToken"] = token
        else:
            body.update(state.tail)
        return body
