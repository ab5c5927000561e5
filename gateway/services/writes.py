"""Client apps' writes: recorded in one transaction (desired state + outbox), applied later.

The answer (202) means the write is durable in the database; the worker applies it upstream
with retries, so an upstream outage delays a write and never loses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from providers.model import GATED_WRITE_FIELDS
from providers.registry import find_entry

from ..domain.desired import DesiredEvent, EventUpsert
from ..domain.managed import managed_context, managed_key
from ..domain.mirror import Policy, event_of_draft, overlay, provisional_id, withdraw
from ..domain.sealing import DataKeys, seal, unseal
from ..persistence.generation import bump_generation
from ..persistence.tables import (
    accounts,
    calendars,
    events,
    managed_events,
    participation_writes,
    profiles,
)
from .channels import ChannelError, ChannelSettings, check_callback_url


class WriteError(Exception):
    """A write the API must refuse (unknown or read-only calendar)."""


class CalendarNotFound(WriteError):
    pass


class CalendarReadOnly(WriteError):
    pass


class AttendeesNotInvited(WriteError):
    """The calendar's provider cannot invite attendees (an application calendar)."""


class EventNotFound(WriteError):
    """No external event with that ``event_uid`` in the calendar."""


class Unsupported(WriteError):
    """The calendar's provider cannot store a field of the event (a 422 naming it)."""

    def __init__(self, field: str, description: str, code: str = "unsupported") -> None:
        super().__init__(description)
        self.field, self.description, self.code = field, description, code


MERGE_ATTEMPTS = 5  # a concurrent upsert of the same event: merge again over its result


PARTICIPATION = frozenset({"accepted", "tentative", "declined"})


class WriteService:
    """Upserts and deletes of managed events, and waiting for them to be applied."""

    def __init__(self, engine: Engine, keys: DataKeys,
                 callbacks: ChannelSettings | None = None) -> None:
        self.engine = engine
        self.keys = keys
        self.callbacks = callbacks or ChannelSettings()  # where a subscription may point

    def _calendar(self, conn: Connection, subject: str, calendar_id: str) -> Any:
        row = conn.execute(
            select(calendars.c.readonly, calendars.c.deleted, profiles.c.provider_name,
                   accounts.c.scope)
            .join(profiles, profiles.c.id == calendars.c.profile_id)
            .join(accounts, accounts.c.id == profiles.c.account_id)
            .where(calendars.c.id == calendar_id, profiles.c.account_id == subject)).first()
        if row is None:
            raise CalendarNotFound(calendar_id)
        if row.readonly or row.deleted:
            raise CalendarReadOnly(calendar_id)
        return row

    def upsert(self, subject: str, calendar_id: str, event_id: str,
               upsert: EventUpsert | DesiredEvent) -> tuple[int, int]:
        """Merge the write over the event's stored desired state (a new event: over the
        defaults) and record it; returns (managed event id, version) to wait on.

        The merge reads and writes the row in one transaction, and the write only lands if
        the row's version is still the one merged over (PostgreSQL also locks the row): a
        concurrent upsert of the same event makes this one merge again over its result, so
        two quick partial upserts compose and neither loses the other's fields."""
        key = self.keys.key(subject)
        if key is None:  # no such account (any more): nothing of it can be written
            raise CalendarNotFound(calendar_id)
        self._check_subscriptions(upsert)
        context = managed_context(calendar_id, event_id)
        for _attempt in range(MERGE_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    done = self._merge(conn, subject, calendar_id, event_id, upsert, key,
                                       context)
            except IntegrityError:  # a concurrent first write made the row: merge over it
                continue
            if done is not None:
                return done
        raise RuntimeError(f"upsert of {event_id!r} kept losing to concurrent writes")

    def _check_subscriptions(self, upsert: EventUpsert | DesiredEvent) -> None:
        """A subscription's uri is where Calgate will POST: checked as a channel's
        callback_url is (https, or plain http to a host the operator allows; never a
        refused network)."""
        for subscription in upsert.subscriptions:
            try:
                check_callback_url(subscription.uri, self.callbacks)
            except ChannelError as exc:
                raise Unsupported("subscriptions", exc.description.replace(
                    "callback_url", "a subscription's uri"), exc.code) from None

    def _merge(self, conn: Connection, subject: str, calendar_id: str, event_id: str,
               upsert: EventUpsert | DesiredEvent, key: bytes, context: str
               ) -> tuple[int, int] | None:
        calendar = self._calendar(conn, subject, calendar_id)
        _check_fields(calendar.provider_name, upsert)
        now = datetime.now(UTC)
        row = conn.execute(select(
            managed_events.c.id, managed_events.c.version, managed_events.c.applied_version,
            managed_events.c.desired, managed_events.c.resource_id).where(
            managed_events.c.calendar_id == calendar_id,
            managed_events.c.event_id == event_id).with_for_update()).first()
        current = None
        if row is not None and row.desired is not None:  # a deleted event is made anew
            current = DesiredEvent.from_stored(unseal(key, row.desired, context))
        desired = upsert.merge(current, pending=row is not None
                               and row.applied_version < row.version)
        _check_capable(calendar.provider_name, desired)
        if desired.attendees and not _invites(calendar.provider_name):
            raise AttendeesNotInvited(calendar_id)
        sealed = seal(key, desired.to_stored(), context)
        mkey = managed_key(subject, calendar_id, event_id)
        if row is None:
            result = conn.execute(insert(managed_events).values(
                account_id=subject, calendar_id=calendar_id, event_id=event_id,
                managed_key=mkey, desired=sealed,
                version=1, applied_version=0, attempts=0, next_attempt_at=now,
                created_at=now, updated_at=now))
            assert result.inserted_primary_key is not None
            written = int(result.inserted_primary_key[0]), 1
        else:
            won = conn.execute(update(managed_events).where(
                managed_events.c.id == row.id, managed_events.c.version == row.version).values(
                desired=sealed, version=row.version + 1, attempts=0, next_attempt_at=now,
                last_error=None, updated_at=now)).rowcount
            if won != 1:
                return None
            # The event's read now shows the write pending (calgate_write): no cached page.
            bump_generation(conn, account_id=subject)
            written = int(row.id), int(row.version) + 1
        if desired.recurrence is None:
            # Read-your-writes: the app's next read shows the desired state (and the write
            # pending, calgate_write) before the worker has applied it upstream. A series
            # shows once applied: only the upstream knows its occurrences.
            resource_id = (row.resource_id if row is not None else None) or provisional_id(mkey)
            overlay(conn, calendar_id, event_of_draft(desired.draft(mkey), resource_id),
                    Policy.for_scope(subject, calendar.scope.split()), key, now)
        return written

    def delete(self, subject: str, calendar_id: str, event_id: str) -> tuple[int, int] | None:
        """Mark the event for deletion; None if the app never made it (still a 202)."""
        with self.engine.begin() as conn:
            self._calendar(conn, subject, calendar_id)
            done = self._delete_where(conn, managed_events.c.calendar_id == calendar_id,
                                      managed_events.c.event_id == event_id)
        return done[0] if done else None

    def bulk_delete(self, subject: str, calendar_ids: Sequence[str] | None) -> int:
        """Delete every managed event of the account, or of the given calendars."""
        with self.engine.begin() as conn:
            where = [managed_events.c.account_id == subject]
            if calendar_ids is not None:
                for calendar_id in calendar_ids:
                    self._calendar(conn, subject, calendar_id)
                where.append(managed_events.c.calendar_id.in_(list(calendar_ids)))
            return len(self._delete_where(conn, *where))

    def _delete_where(self, conn: Connection, *where: Any) -> list[tuple[int, int]]:
        now = datetime.now(UTC)
        rows = conn.execute(select(managed_events.c.id, managed_events.c.version,
                                   managed_events.c.account_id, managed_events.c.calendar_id,
                                   managed_events.c.managed_key).where(
            *where, managed_events.c.desired.is_not(None))).all()
        for row in rows:
            conn.execute(update(managed_events).where(managed_events.c.id == row.id).values(
                desired=None, version=row.version + 1, attempts=0, next_attempt_at=now,
                last_error=None, updated_at=now))
            # Read-your-writes: gone from the next read (deleted: true with include_deleted).
            withdraw(conn, row.calendar_id, row.managed_key, row.account_id, now)
        return [(int(r.id), int(r.version) + 1) for r in rows]

    def answer(self, subject: str, calendar_id: str, event_uid: str,
               status: str) -> tuple[int, int]:
        """Queue the owner's answer to an invitation (API.md s6.5); the worker sends it."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            self._calendar(conn, subject, calendar_id)
            found = conn.execute(select(events.c.id).where(
                events.c.calendar_id == calendar_id, events.c.event_uid == event_uid,
                events.c.managed_key.is_(None), events.c.deleted.is_(False))).first()
            if found is None:
                raise EventNotFound(event_uid)
            row = conn.execute(select(participation_writes.c.id,
                                      participation_writes.c.version).where(
                participation_writes.c.calendar_id == calendar_id,
                participation_writes.c.event_uid == event_uid)).first()
            if row is None:
                result = conn.execute(insert(participation_writes).values(
                    account_id=subject, calendar_id=calendar_id, event_uid=event_uid,
                    status=status, version=1, applied_version=0, attempts=0,
                    next_attempt_at=now, updated_at=now))
                assert result.inserted_primary_key is not None
                return int(result.inserted_primary_key[0]), 1
            conn.execute(update(participation_writes).where(
                participation_writes.c.id == row.id).values(
                status=status, version=row.version + 1, attempts=0, next_attempt_at=now,
                updated_at=now))
            return int(row.id), int(row.version) + 1

    def applied(self, managed_id: int, version: int) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(select(managed_events.c.applied_version).where(
                managed_events.c.id == managed_id)).first()
        return row is not None and row.applied_version >= version


def _check_fields(provider_name: str, upsert: EventUpsert | DesiredEvent) -> None:
    """Refuse, before accepting it, a write that uses a field the calendar's provider
    cannot carry upstream (its registry entry's ``write_fields``)."""
    entry = find_entry(provider_name)
    offered = entry.write_fields if entry is not None else frozenset()
    for row in sorted(upsert.gated_fields() - offered):
        field = GATED_WRITE_FIELDS[row]
        raise Unsupported(field, f"{field} cannot be written to a "
                                 f"{entry.display_name if entry else provider_name} calendar")


def _check_capable(provider_name: str, desired: DesiredEvent) -> None:
    """Refuse what the calendar's provider cannot store, before it reaches the outbox."""
    entry = find_entry(provider_name)
    if desired.recurrence is not None and (
            entry is None or not entry.capabilities.recurring_writes):
        raise Unsupported("recurrence", "this calendar cannot store recurring events: "
                                        "write each occurrence as its own event")


def _invites(provider_name: str) -> bool:
    """Whether the provider invites the attendees of an event it writes."""
    entry = find_entry(provider_name)
    return entry is None or entry.capabilities.invitations
