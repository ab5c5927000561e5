"""Writes to external events (``event_uid``, API.md s6.3): recorded in one transaction with
the checks that allow them, applied by the worker like managed writes.

Allowed only on a calendar whose ``permission_level`` the user raised to ``unrestricted``
(``POST /v1/permissions``), that the account can write, and on an event the mirror holds
as external (not the app's own) and not recurring (Cronofy: instances of a series are not
editable through the API; ``options.update`` is false for them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from providers.model import EventPatch

from ..domain.external import (
    PERMISSION_UNRESTRICTED,
    external_context,
    merge_stored,
    patch_to_stored,
)
from ..domain.sealing import DataKeys, seal, unseal
from ..persistence.generation import bump_generation
from ..persistence.tables import calendars, events, external_writes, profiles
from .writes import CalendarNotFound, CalendarReadOnly, EventNotFound, WriteError


class NotPermitted(WriteError):
    """The calendar's permission level is ``sandbox``: elevated permissions are needed."""


class NotEditable(WriteError):
    """The event cannot be changed through ``event_uid`` (recurring, or the app's own)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ExternalWriteService:
    """Queues patches and deletions of external events; says when they are applied."""

    def __init__(self, engine: Engine, keys: DataKeys) -> None:
        self.engine = engine
        self.keys = keys

    def patch(self, subject: str, calendar_id: str, event_uid: str,
              patch: EventPatch) -> tuple[int, int]:
        """Queue ``patch`` (merged into one still pending); returns (write id, version)."""
        key = self.keys.key(subject)
        if key is None:
            raise CalendarNotFound(calendar_id)
        context = external_context(calendar_id, event_uid)
        with self.engine.begin() as conn:
            resource_id = _target(conn, subject, calendar_id, event_uid)
            row = _row(conn, calendar_id, event_uid)
            stored = patch_to_stored(patch)
            if row is not None and row.patch is not None and row.applied_version < row.version:
                stored = merge_stored(unseal(key, row.patch, context), stored)
            return _queue(conn, subject, calendar_id, event_uid, resource_id, row,
                          seal(key, stored, context))

    def delete(self, subject: str, calendar_id: str, event_uid: str) -> tuple[int, int]:
        """Queue the event's deletion (a pending patch is dropped: the event goes)."""
        with self.engine.begin() as conn:
            resource_id = _target(conn, subject, calendar_id, event_uid)
            return _queue(conn, subject, calendar_id, event_uid, resource_id,
                          _row(conn, calendar_id, event_uid), None)

    def applied(self, write_id: int, version: int) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(select(external_writes.c.applied_version).where(
                external_writes.c.id == write_id)).first()
        return row is not None and row.applied_version >= version


def _target(conn: Connection, subject: str, calendar_id: str, event_uid: str) -> str:
    """The event's upstream id, once every check passed."""
    calendar = conn.execute(
        select(calendars.c.readonly, calendars.c.deleted, calendars.c.permission_level)
        .join(profiles, profiles.c.id == calendars.c.profile_id)
        .where(calendars.c.id == calendar_id, profiles.c.account_id == subject)).first()
    if calendar is None:
        raise CalendarNotFound(calendar_id)
    if calendar.readonly or calendar.deleted:
        raise CalendarReadOnly(calendar_id)
    if calendar.permission_level != PERMISSION_UNRESTRICTED:
        raise NotPermitted(calendar_id)
    event = conn.execute(select(events.c.resource_id, events.c.recurring,
                                events.c.managed_key).where(
        events.c.calendar_id == calendar_id, events.c.event_uid == event_uid,
        events.c.deleted.is_(False))).first()
    if event is None:
        raise EventNotFound(event_uid)
    if event.managed_key is not None:
        raise NotEditable("this is the app's own event: write it by its event_id")
    if event.recurring:
        raise NotEditable("an instance of a recurring event cannot be changed or deleted "
                          "through the API (its options.update and options.delete are false)")
    return str(event.resource_id)


def _row(conn: Connection, calendar_id: str, event_uid: str) -> Any:
    return conn.execute(select(external_writes).where(
        external_writes.c.calendar_id == calendar_id,
        external_writes.c.event_uid == event_uid)).first()


def _queue(conn: Connection, subject: str, calendar_id: str, event_uid: str,
           resource_id: str, row: Any, sealed: bytes | None) -> tuple[int, int]:
    now = datetime.now(UTC)
    bump_generation(conn, account_id=subject)  # the event's read shows the write pending
    if row is None:
        result = conn.execute(insert(external_writes).values(
            account_id=subject, calendar_id=calendar_id, event_uid=event_uid,
            resource_id=resource_id, patch=sealed, version=1, applied_version=0,
            attempts=0, next_attempt_at=now, updated_at=now))
        assert result.inserted_primary_key is not None
        return int(result.inserted_primary_key[0]), 1
    conn.execute(update(external_writes).where(external_writes.c.id == row.id).values(
        resource_id=resource_id, patch=sealed, version=row.version + 1, attempts=0,
        next_attempt_at=now, last_error=None, updated_at=now))
    return int(row.id), int(row.version) + 1
