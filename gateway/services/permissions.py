"""Elevated permissions (API.md s6.3): an app asks, the calendar's owner approves on
Calgate's page, and the calendar's ``permission_level`` becomes ``unrestricted`` for that
app's account (the grant), so the app may change and delete events it did not create.

The request is bound to the account and the client app by an unguessable token in the
page's URL (only its SHA-256 is stored): it works in any browser, once, until it expires.
Approval never pretends: a calendar the linked upstream account cannot write (read-only
upstream, or linked with read-only or free/busy access, so the upstream grant Calgate holds
has no write scope) is refused on the page, and at the request already.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from ..domain.external import PERMISSION_UNRESTRICTED
from ..persistence.generation import bump_generation
from ..persistence.tables import accounts, calendars, permission_requests, profiles

REQUEST_TTL = timedelta(hours=1)
# How long a request's row outlives its expiry (answered or not), so that its page says
# "expired" or "already answered" rather than "not found" for that long; housekeeping then
# deletes it.
REQUEST_KEPT = timedelta(days=1)
# The upstream write access an approval needs: the account's grant must have made Calgate
# ask the upstream for write scopes (both, as the page promises "change and delete").
WRITE_SCOPES = frozenset({"create_event", "delete_event"})


class PermissionRefused(Exception):
    """A permissions request the API or the page must refuse."""


class UnknownCalendar(PermissionRefused):
    """Not a calendar of this account."""


class NotWritable(PermissionRefused):
    """The linked upstream account cannot change this calendar's events."""

    def __init__(self, calendar_id: str, reason: str) -> None:
        super().__init__(reason)
        self.calendar_id = calendar_id
        self.reason = reason


class RequestUnusable(PermissionRefused):
    """The page's token is unknown (forged), expired, or already answered."""


@dataclass(frozen=True, slots=True)
class AppInfo:
    """The client app as the page presents it (from the OAuth server's registry)."""

    client_id: str
    display_name: str
    redirect_uris: tuple[str, ...]
    verified: bool = False
    logo_url: str | None = None
    privacy_policy_url: str | None = None
    support_url: str | None = None


@dataclass(frozen=True, slots=True)
class CalendarAsked:
    calendar_id: str
    name: str
    profile_name: str
    problem: str | None  # why it cannot be approved, in plain words


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """What the page shows: the app, the calendars, and where the answer goes."""

    client_id: str
    redirect_uri: str
    calendars: tuple[CalendarAsked, ...]

    @property
    def approvable(self) -> bool:
        return all(c.problem is None for c in self.calendars)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class PermissionService:
    """Records permissions requests, shows them, and applies the user's answer."""

    def __init__(self, engine: Engine, ttl: timedelta = REQUEST_TTL) -> None:
        self.engine = engine
        self.ttl = ttl

    def request(self, subject: str, client_id: str, calendar_ids: Sequence[str],
                redirect_uri: str) -> str:
        """Record a request; returns the token for the page's URL (never stored)."""
        now = datetime.now(UTC)
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            for asked in _calendars(conn, subject, calendar_ids):
                if asked.problem is not None:
                    raise NotWritable(asked.calendar_id, asked.problem)
            conn.execute(insert(permission_requests).values(
                token_hash=token_hash(token), account_id=subject, client_id=client_id,
                calendar_ids=list(dict.fromkeys(calendar_ids)), redirect_uri=redirect_uri,
                created_at=now, expires_at=now + self.ttl))
        return token

    def find(self, token: str) -> PendingRequest:
        """The open request behind ``token``; RequestUnusable when there is none."""
        with self.engine.connect() as conn:
            row = _open(conn, token)
            asked = _calendars(conn, row.account_id, row.calendar_ids)
        return PendingRequest(row.client_id, row.redirect_uri, tuple(asked))

    def answer(self, token: str, approve: bool) -> PendingRequest:
        """Apply the user's answer, once: the token is spent in the same transaction that
        raises the calendars' permission level (NotWritable: nothing is raised)."""
        with self.engine.begin() as conn:
            row = _open(conn, token)
            spent = conn.execute(update(permission_requests).where(
                permission_requests.c.token_hash == row.token_hash,
                permission_requests.c.answered_at.is_(None)).values(
                answered_at=datetime.now(UTC))).rowcount
            if spent != 1:  # a concurrent answer won
                raise RequestUnusable("already answered")
            asked = tuple(_calendars(conn, row.account_id, row.calendar_ids))
            pending = PendingRequest(row.client_id, row.redirect_uri, asked)
            if approve and pending.approvable:
                conn.execute(update(calendars).where(
                    calendars.c.id.in_([c.calendar_id for c in asked])).values(
                    permission_level=PERMISSION_UNRESTRICTED))
                bump_generation(conn, account_id=row.account_id)
        return pending

    def purge(self) -> int:
        """Housekeeping: delete the requests that expired (answered or not) over
        REQUEST_KEPT ago; how many went."""
        with self.engine.begin() as conn:
            return int(conn.execute(delete(permission_requests).where(
                permission_requests.c.expires_at < datetime.now(UTC) - REQUEST_KEPT)).rowcount)


def _open(conn: Connection, token: str) -> Any:
    row = conn.execute(select(permission_requests).where(
        permission_requests.c.token_hash == token_hash(token))).first()
    if row is None:
        raise RequestUnusable("unknown")
    if row.answered_at is not None:
        raise RequestUnusable("already answered")
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires <= datetime.now(UTC):
        raise RequestUnusable("expired")
    return row


def _calendars(conn: Connection, subject: str, calendar_ids: Sequence[str]
               ) -> list[CalendarAsked]:
    rows = {r.id: r for r in conn.execute(
        select(calendars.c.id, calendars.c.name, calendars.c.readonly, calendars.c.deleted,
               profiles.c.profile_name, profiles.c.connected, accounts.c.scope)
        .join(profiles, profiles.c.id == calendars.c.profile_id)
        .join(accounts, accounts.c.id == profiles.c.account_id)
        .where(profiles.c.account_id == subject,
               calendars.c.id.in_(list(calendar_ids)))).all()}
    asked = []
    for calendar_id in dict.fromkeys(calendar_ids):
        row = rows.get(calendar_id)
        if row is None:
            raise UnknownCalendar(calendar_id)
        asked.append(CalendarAsked(calendar_id, row.name, row.profile_name, _problem(row)))
    return asked


def _problem(row: Any) -> str | None:
    if row.deleted:
        return "This calendar no longer exists in your calendar account."
    if row.readonly:
        return "Your calendar account only lets you read this calendar, not change it."
    if not set((row.scope or "").split()) >= WRITE_SCOPES:
        return ("You connected this calendar with read-only or free/busy access, so "
                "Calgate cannot change its events. The app must ask you to connect it "
                "again with permission to create and delete events first.")
    return None
