"""Applying a provider's change set to the mirror, keeping only what the grant allows.

Rows are per instance. A change to a resource replaces all its instances; instances that
disappear become tombstones (``deleted``) so ``include_deleted`` and ``last_modified`` can
report them. A row's ``updated`` moves only when its content really changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from providers.model import ChangeSet, Event, EventDraft, Person, TimeWindow, When

from ..persistence.generation import bump_generation
from ..persistence.tables import MAX_SPAN_SECONDS, calendars, events, managed_events
from .event_notices import queue_conferencing
from .managed import managed_prefix
from .notify import calendar_changed
from .sealing import EventText, TextPerson, seal_text


@dataclass(frozen=True, slots=True)
class Policy:
    """What the account's grant lets the mirror keep (data minimisation)."""

    account_id: str
    text: bool  # summary, description, location and people of other events
    only_managed: bool  # keep nothing but the app's own events

    @classmethod
    def for_scope(cls, account_id: str, scopes: Iterable[str]) -> Policy:
        granted = set(scopes)
        if "read_events" in granted:
            return cls(account_id, text=True, only_managed=False)
        if "read_free_busy" in granted:
            return cls(account_id, text=False, only_managed=False)
        return cls(account_id, text=False, only_managed=True)

    def owns(self, event: Event) -> bool:
        return bool(event.managed_key and event.managed_key.startswith(
            managed_prefix(self.account_id)))

    def keeps(self, event: Event) -> bool:
        return self.owns(event) or not self.only_managed

    def keeps_text(self, event: Event) -> bool:
        return self.text or self.owns(event)


def utc(value: When) -> datetime:
    """All-day dates are stored as midnight UTC of that date (with ``all_day`` set)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def event_uid(calendar_id: str, instance_id: str) -> str:
    digest = hashlib.sha256(f"{calendar_id}\x00{instance_id}".encode()).hexdigest()
    return f"evt_external_{digest[:24]}"


def series_identifier(calendar_id: str, resource_id: str) -> str:
    """What the occurrences of one series share (Cronofy's ``series_identifier``): named
    by the upstream object they belong to, as ``event_uid`` is by the occurrence."""
    digest = hashlib.sha256(f"series\x00{calendar_id}\x00{resource_id}".encode()).hexdigest()
    return f"srs_{digest[:24]}"


def managed_event_uid(calendar_id: str, managed_key: str) -> str:
    """A client app's own (non-recurring) event is named by its managed key, not by the
    upstream's id: the ``event_uid`` is known when the write is accepted, before the
    upstream has given the event an id, and stays the same after."""
    digest = hashlib.sha256(f"{calendar_id}\x00managed\x00{managed_key}".encode()).hexdigest()
    return f"evt_managed_{digest[:24]}"


def uid_of(calendar_id: str, event: Event, owned: bool) -> str:
    if owned and event.managed_key and not event.recurring:
        return managed_event_uid(calendar_id, event.managed_key)
    return event_uid(calendar_id, event.instance_id)


def text_of(event: Event) -> EventText:
    def person(p: Person) -> TextPerson:
        return TextPerson(p.email, p.display_name, p.status)

    return EventText(
        summary=event.summary, description=event.description, location=event.location,
        url=event.url, categories=tuple(event.categories),
        participation_status=event.participation_status,
        attendees=tuple(person(p) for p in event.attendees),
        organizer=person(event.organizer) if event.organizer else None,
        meeting_url=event.meeting_url or None, reminders=event.reminders, geo=event.geo,
        # Only what transparency cannot say (opaque and transparent are its own values), so
        # rows of events without such a state keep their fingerprints.
        extended_transparency=event.extended_transparency
        if event.extended_transparency not in (None, "opaque", "transparent") else None,
        conference_name=(event.conference_name or None) if event.meeting_url else None)


# Answers that change whether an invitation makes its owner busy (availability).
BUSY_ANSWERS = frozenset({"declined", "tentative"})


def row_values(calendar_id: str, event: Event, policy: Policy, key: bytes | None
               ) -> dict[str, Any]:
    text = text_of(event) if policy.keeps_text(event) else None
    owned = policy.owns(event)
    values: dict[str, Any] = {
        "resource_id": event.resource_id, "instance_id": event.instance_id,
        "event_uid": uid_of(calendar_id, event, owned),
        "managed_key": event.managed_key if owned else None,
        "start_at": utc(event.start), "end_at": utc(event.end),
        "all_day": isinstance(event.start, date) and not isinstance(event.start, datetime),
        "start_tzid": event.start_tzid, "end_tzid": event.end_tzid,
        "status": event.status, "transparency": event.transparency,
        "recurring": event.recurring, "private": event.private, "etag": event.etag,
    }
    # The owner's answer counts in the fingerprint only where it changes busy time, so rows
    # mirrored before the column existed keep their fingerprints unless they must change.
    if event.participation_status in BUSY_ANSWERS:
        values["participation"] = event.participation_status
    stored = text.to_stored() if text is not None else None
    fingerprint = json.dumps([values, stored], default=str, sort_keys=True)
    values["fingerprint"] = hashlib.sha256(fingerprint.encode()).hexdigest()
    values["participation"] = event.participation_status
    values["sealed"] = None
    if text is not None and key is not None:
        values["sealed"] = seal_text(key, text, f"{calendar_id}|{event.instance_id}")
    return values


def pending_keys(conn: Connection, calendar_id: str) -> set[str]:
    """Managed keys of the calendar with a write accepted but not yet applied upstream: the
    mirror shows their desired state (read-your-writes), so what the upstream has for them
    is older than what the app asked for and must not overwrite it."""
    return set(conn.execute(select(managed_events.c.managed_key).where(
        managed_events.c.calendar_id == calendar_id,
        managed_events.c.applied_version < managed_events.c.version)).scalars())


def apply_changes(conn: Connection, calendar_id: str, changes: ChangeSet, policy: Policy,
                  key: bytes | None, now: datetime, window: TimeWindow | None = None) -> int:
    """Write ``changes`` into the mirror of ``calendar_id``; returns the rows that changed.

    ``window`` is what the provider listed: a managed event outside it was simply not
    looked at, so it is kept (managed events have no window); others become tombstones.
    The app's own events with a write still pending keep the desired state the write put
    in the mirror.
    """
    query = select(events.c.id, events.c.resource_id, events.c.instance_id,
                   events.c.fingerprint, events.c.deleted, events.c.managed_key,
                   events.c.start_at, events.c.end_at).where(
        events.c.calendar_id == calendar_id)
    if not changes.full:
        touched = set(changes.changed) | set(changes.deleted)
        query = query.where(events.c.resource_id.in_(touched))
    existing = {r.instance_id: r for r in conn.execute(query).all()}
    held = pending_keys(conn, calendar_id)
    seen: set[str] = set()
    rekeyed: set[int] = set()
    written = 0
    managed = False  # did any of the app's own events change (only_managed channels)?
    for instances in changes.changed.values():
        for event in instances:
            if not policy.keeps(event):
                continue
            seen.add(event.instance_id)
            values = row_values(calendar_id, event, policy, key)
            if values["managed_key"] is not None and values["managed_key"] in held:
                continue  # the app's newer write is what the mirror shows until applied
            row = existing.get(event.instance_id)
            if row is None and values["managed_key"] is not None and not event.recurring:
                row = _row_of_managed(conn, calendar_id, values["managed_key"])
                if row is not None:  # the accepted write's row (or an older id) re-keyed
                    rekeyed.add(row.id)
            if row is None:
                conn.execute(insert(events).values(calendar_id=calendar_id, deleted=False,
                                                   created=now, updated=now, **values))
                written += 1
                managed = managed or values["managed_key"] is not None
            elif row.fingerprint != values["fingerprint"] or row.deleted:
                conn.execute(update(events).where(events.c.id == row.id)
                             .values(deleted=False, updated=now, **values))
                written += 1
                managed = managed or values["managed_key"] is not None or (
                    row.managed_key is not None)
            else:
                continue
            if values["managed_key"] is not None:  # subscriptions to its meeting URL
                queue_conferencing(conn, calendar_id, event, values["event_uid"], key, now)
    gone = set(changes.deleted)
    for instance_id, row in existing.items():
        if row.deleted or instance_id in seen or row.id in rekeyed:
            continue
        if row.managed_key is not None and row.managed_key in held:
            continue
        if window is not None and row.managed_key is not None and not _inside(row, window):
            continue
        if changes.full or row.resource_id in gone or row.resource_id in changes.changed:
            conn.execute(update(events).where(events.c.id == row.id)
                         .values(deleted=True, updated=now, sealed=None))
            written += 1
            managed = managed or row.managed_key is not None
    if written:
        _widen_span(conn, calendar_id, changes, policy)
        bump_generation(conn, account_id=policy.account_id)
        # In this transaction: a committed change always has its notification.
        calendar_changed(conn, policy.account_id, calendar_id, now, managed)
    return written


def _row_of_managed(conn: Connection, calendar_id: str, managed_key: str) -> Any:
    return conn.execute(select(
        events.c.id, events.c.resource_id, events.c.instance_id, events.c.fingerprint,
        events.c.deleted, events.c.managed_key, events.c.start_at, events.c.end_at).where(
        events.c.calendar_id == calendar_id, events.c.managed_key == managed_key,
        events.c.recurring.is_(False)).order_by(events.c.deleted, events.c.id).limit(1)
    ).first()


def overlay(conn: Connection, calendar_id: str, event: Event, policy: Policy,
            key: bytes | None, now: datetime) -> None:
    """Show an accepted write's desired state in the mirror at once (read-your-writes):
    the app's own event's row takes the new values (or is made, named by a provisional id
    until the upstream gives it one). No notification: the app made the change itself;
    channels hear about it when the write is applied upstream."""
    values = row_values(calendar_id, event, policy, key)
    row = conn.execute(select(events.c.id).where(
        events.c.calendar_id == calendar_id, events.c.instance_id == event.instance_id)
    ).first() or _row_of_managed(conn, calendar_id, str(event.managed_key))
    if row is None:
        conn.execute(insert(events).values(calendar_id=calendar_id, deleted=False,
                                           created=now, updated=now, **values))
    else:
        conn.execute(update(events).where(events.c.id == row.id)
                     .values(deleted=False, updated=now, **values))
    _widen_span(conn, calendar_id, ChangeSet(changed={event.resource_id: [event]}), policy)
    bump_generation(conn, account_id=policy.account_id)


def withdraw(conn: Connection, calendar_id: str, managed_key: str, account_id: str,
             now: datetime) -> int:
    """Show the app's own event as deleted at once (an accepted delete, or a create the
    upstream refused for good); returns the rows tombstoned."""
    gone = conn.execute(update(events).where(
        events.c.calendar_id == calendar_id, events.c.managed_key == managed_key,
        events.c.deleted.is_(False)).values(deleted=True, updated=now, sealed=None)).rowcount
    if gone:
        bump_generation(conn, account_id=account_id)
    return int(gone)


def event_of_draft(draft: EventDraft, resource_id: str, etag: str | None = None) -> Event:
    """The mirror's view of an event the app asked for (before or after it is upstream)."""
    return draft.as_event(resource_id, etag)


def provisional_id(managed_key: str) -> str:
    """The resource and instance id of an accepted write's row until the upstream has one."""
    return f"calgate-pending:{managed_key}"


def _widen_span(conn: Connection, calendar_id: str, changes: ChangeSet, policy: Policy
                ) -> None:
    """Keep ``calendars.max_event_seconds`` at least the longest event ever mirrored."""
    known = conn.execute(select(calendars.c.max_event_seconds).where(
        calendars.c.id == calendar_id)).scalar()
    if known is None:  # first time (or a mirror from before the column): measure it all
        rows = conn.execute(select(events.c.start_at, events.c.end_at).where(
            events.c.calendar_id == calendar_id)).all()
        spans = [(r.end_at - r.start_at).total_seconds() for r in rows]
    else:
        spans = [(utc(e.end) - utc(e.start)).total_seconds()
                 for instances in changes.changed.values() for e in instances
                 if policy.keeps(e)]
    longest = min(int(max(spans, default=0)), MAX_SPAN_SECONDS)
    if known is None or longest > known:
        conn.execute(update(calendars).where(calendars.c.id == calendar_id)
                     .values(max_event_seconds=max(longest, known or 0)))


def _inside(row: Any, window: TimeWindow) -> bool:
    start, end = row.start_at, row.end_at
    if start.tzinfo is None:  # SQLite hands back naive UTC values
        start, end = start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
    return bool(end > window.start and start < window.end)
