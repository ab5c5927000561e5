"""Queueing notifications to client apps' channels, inside the transaction that caused them.

A notification row is written in the same transaction as the mirror change (or profile
change) it reports, so a committed change always has its notification, and a rolled-back
one never does. The worker delivers them (sync/delivery.py).

Pending ``change`` notifications of a channel are coalesced: a new change joins the
channel's last pending notification when that is a ``change`` nobody is sending right now,
keeping the earliest ``changes_since``. A client that reads
``GET /v1/events?last_modified=<changes_since>`` after it sees every change since.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, case, func, insert, or_, select, update

from ..persistence.tables import calendars, channels, notifications, profiles
from .ids import new_id

CHANGE = "change"
VERIFICATION = "verification"
PROFILE_DISCONNECTED = "profile_disconnected"
PROFILE_INITIAL_SYNC_COMPLETED = "profile_initial_sync_completed"


def second(value: datetime) -> datetime:
    """``changes_since`` goes on the wire in whole seconds: round down, never up."""
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


def _covers(channel: Any, calendar_id: str | None, managed: bool) -> bool:
    if channel.only_managed and not managed:
        return False
    return calendar_id is None or not channel.calendar_ids or calendar_id in channel.calendar_ids


def queue(conn: Connection, channel_id: str, kind: str, now: datetime, *,
          changes_since: datetime | None = None, profile_id: str | None = None) -> None:
    """Queue one notification for a channel (a ``change`` may join a pending one)."""
    if kind == CHANGE:
        assert changes_since is not None
        since = second(changes_since)
        last = conn.execute(
            select(notifications.c.id, notifications.c.type)
            .where(notifications.c.channel_id == channel_id,
                   notifications.c.delivered_at.is_(None))
            .order_by(notifications.c.id.desc()).limit(1)).first()
        if last is not None and last.type == CHANGE:
            # Join it unless a worker holds it right now (then this change needs its own).
            joined = conn.execute(update(notifications).where(
                notifications.c.id == last.id, notifications.c.delivered_at.is_(None),
                or_(notifications.c.claimed_until.is_(None),
                    notifications.c.claimed_until < now),
            ).values(changes_since=case(
                (notifications.c.changes_since > since, since),
                else_=notifications.c.changes_since))).rowcount
            if joined:
                return
        changes_since = since
    conn.execute(insert(notifications).values(
        public_id=new_id("ntf_"), channel_id=channel_id, type=kind,
        changes_since=changes_since, profile_id=profile_id, created_at=now,
        next_attempt_at=now, attempts=0))


def _channels(conn: Connection, account_id: str) -> list[Any]:
    return list(conn.execute(select(channels.c.id, channels.c.calendar_ids,
                                    channels.c.only_managed)
                             .where(channels.c.account_id == account_id)).all())


def calendar_changed(conn: Connection, account_id: str, calendar_id: str,
                     since: datetime, managed: bool, now: datetime | None = None) -> int:
    """The mirror of ``calendar_id`` changed at ``since``; ``managed``: some of the changed
    rows are the app's own events. Returns how many channels were told."""
    now = now or datetime.now(UTC)
    told = 0
    for channel in _channels(conn, account_id):
        if _covers(channel, calendar_id, managed):
            queue(conn, channel.id, CHANGE, now, changes_since=since)
            told += 1
    return told


def account_changed(conn: Connection, account_id: str, since: datetime,
                    channel_ids: Iterable[str] | None = None,
                    now: datetime | None = None) -> int:
    """Tell every channel of the account (or the given ones) about changes since ``since``
    (a full resync, a replay)."""
    now = now or datetime.now(UTC)
    wanted = None if channel_ids is None else set(channel_ids)
    told = 0
    for channel in _channels(conn, account_id):
        if wanted is None or channel.id in wanted:
            queue(conn, channel.id, CHANGE, now, changes_since=since)
            told += 1
    return told


def profile_event(conn: Connection, profile_id: str, kind: str,
                  now: datetime | None = None) -> int:
    """A profile-level notification (disconnected, initial sync completed) to every channel
    of the profile's account."""
    now = now or datetime.now(UTC)
    account_id = conn.execute(select(profiles.c.account_id).where(
        profiles.c.id == profile_id)).scalar()
    if account_id is None:
        return 0
    found = _channels(conn, account_id)
    for channel in found:
        queue(conn, channel.id, kind, now, profile_id=profile_id)
    return len(found)


def account_of_calendar(conn: Connection, calendar_id: str) -> str | None:
    return conn.execute(select(profiles.c.account_id).join(
        calendars, calendars.c.profile_id == profiles.c.id).where(
        calendars.c.id == calendar_id)).scalar()


def pending(conn: Connection, channel_id: str) -> int:
    return int(conn.execute(select(func.count()).select_from(notifications).where(
        notifications.c.channel_id == channel_id,
        notifications.c.delivered_at.is_(None))).scalar_one())
