"""The emulator's world: tenants' users (work or school, or personal Microsoft accounts),
registered apps, mailboxes with calendars, and the stored events (singles, series masters
with their exceptions and cancelled occurrences). One lock guards it all."""

from __future__ import annotations

import base64
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PERSONAL_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"  # Microsoft's consumer tenant
DEFAULT_TENANT = "72f988bf-0000-4000-8000-00000000c0de"


def new_id(prefix: str = "AAMkAGI2") -> str:
    """An opaque id in Graph's style (base64 with '=' padding and '-'/'_')."""
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(40)).decode()


def new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(12)).decode()


@dataclass
class User:
    email: str
    name: str
    personal: bool
    tenant: str
    oid: str = field(default_factory=lambda: str(uuid.uuid4()))
    admin_consent_error: int | None = None  # 90094 or 65001: the tenant wants an admin
    refresh_error: int | None = None  # 70000 or 700082: refresh tokens answer invalid_grant
    tz: str = "UTC"


@dataclass
class App:
    client_id: str
    secret: str | None  # None: a public client (no secret; PKCE)
    name: str
    redirect_uris: tuple[str, ...]
    audience: str = "AzureADandPersonalMicrosoftAccount"  # or AzureADMultipleOrgs, ...
    home_tenant: str = DEFAULT_TENANT


@dataclass
class StoredEvent:
    resource: dict[str, Any]  # Graph fields except start/end, kept in UTC below
    start: datetime
    end: datetime
    extended: dict[str, str] = field(default_factory=dict)  # singleValueExtendedProperties
    # series only: overrides keyed by the occurrence's original start (ISO, UTC)
    exceptions: dict[str, StoredEvent] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    master_id: str | None = None  # set on exceptions
    original_start: datetime | None = None  # set on exceptions

    @property
    def id(self) -> str:
        return str(self.resource["id"])


@dataclass
class Calendar:
    id: str
    owner: str  # the mailbox's email
    name: str
    owner_name: str
    owner_address: str
    is_default: bool = False
    can_edit: bool = True
    color: str = "auto"
    hex_color: str = ""
    change_key: str = field(default_factory=new_change_key)
    events: dict[str, StoredEvent] = field(default_factory=dict)  # singles and masters


@dataclass
class Mailbox:
    user: User
    calendars: dict[str, Calendar] = field(default_factory=dict)
    transactions: dict[str, tuple[str, str]] = field(default_factory=dict)  # -> (cal, id)

    def default(self) -> Calendar:
        return next(c for c in self.calendars.values() if c.is_default)


# what changed: (mailbox email, calendar id, event id, "created" | "updated" | "deleted")
ChangeListener = Callable[[str, str, str, str], None]


class World:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.mailboxes: dict[str, Mailbox] = {}
        self.apps: dict[str, App] = {}
        self.listeners: list[ChangeListener] = []

    @contextmanager
    def unlocked(self) -> Iterator[None]:
        """Let go of the lock (held once, by the request) while calling out."""
        self.lock.release()
        try:
            yield
        finally:
            self.lock.acquire()

    def changed(self, email: str, calendar_id: str, event_id: str, kind: str) -> None:
        for listener in self.listeners:
            listener(email, calendar_id, event_id, kind)

    def add_user(self, email: str, name: str | None, personal: bool, tenant: str | None,
                 tz: str) -> User:
        key = email.lower()
        if key in self.users:
            raise ValueError(f"user {email} exists")
        user = User(key, name or key.split("@")[0].title(), personal,
                    PERSONAL_TENANT if personal else (tenant or DEFAULT_TENANT), tz=tz)
        self.users[key] = user
        box = self.mailboxes[key] = Mailbox(user)
        self.add_calendar(key, "Calendar", is_default=True)
        del box  # the default calendar exists from the start, as in Outlook
        return user

    def add_calendar(self, email: str, name: str, *, is_default: bool = False,
                     can_edit: bool = True, color: str = "auto",
                     owner: tuple[str, str] | None = None) -> Calendar:
        box = self.mailbox(email)
        owner_name, owner_address = owner or (box.user.name, box.user.email)
        calendar = Calendar(new_id("AAMkAGCal"), box.user.email, name, owner_name,
                            owner_address, is_default=is_default, can_edit=can_edit,
                            color=color)
        box.calendars[calendar.id] = calendar
        return calendar

    def mailbox(self, email: str) -> Mailbox:
        try:
            return self.mailboxes[email.lower()]
        except KeyError:
            raise KeyError(f"no mailbox {email}") from None

    def user_by_oid(self, oid: str) -> User | None:
        return next((u for u in self.users.values() if u.oid == oid), None)
