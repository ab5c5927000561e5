"""Per-event subscriptions (Cronofy's upsert ``subscriptions``): queueing
``conferencing_assigned`` when the app's own event gets a meeting URL.

Called by the mirror in the transaction that writes the event, so a committed meeting URL
always has its notification. One row per (managed event, subscription uri, interaction,
join URL), de-duplicated by ``dedup_key``: a later sync seeing the same URL queues nothing;
a different URL (the upstream replaced the meeting) is a new assignment. The body is sealed
with the account's data key (it names the join URL) and delivered by the Smart Invite
deliverer (sync/invite_delivery.py), signed like every notification.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from providers.model import Event
from providers.registry import find_entry

from ..persistence.tables import accounts, calendars, managed_events, profiles
from ..persistence.tables import smart_invite_notifications as notices
from .desired import DesiredEvent
from .ids import new_id
from .managed import managed_context
from .sealing import DataKeys, seal, unseal

CONFERENCING_ASSIGNED = "conferencing_assigned"


def notice_context(dedup_key: str) -> str:
    """What a conferencing notification's sealed body is bound to."""
    return f"notice|{dedup_key}"


def seal_body(key: bytes, body: dict[str, Any], dedup_key: str) -> str:
    return base64.b64encode(seal(key, body, notice_context(dedup_key))).decode("ascii")


def unseal_body(key: bytes, sealed: str, dedup_key: str) -> dict[str, Any]:
    return unseal(key, base64.b64decode(sealed), notice_context(dedup_key))


def dedup_key(managed_event_id: int, uri: str, interaction: str, join_url: str) -> str:
    parts = "\x00".join((str(managed_event_id), uri, interaction, join_url))
    return hashlib.sha256(parts.encode()).hexdigest()


def queue_conferencing(conn: Connection, calendar_id: str, event: Event, event_uid: str,
                       key: bytes | None, now: datetime) -> int:
    """Queue ``conferencing_assigned`` for the app's own ``event`` (just written to the
    mirror) if it has a meeting URL and its desired state subscribes to it; returns how
    many notifications were queued."""
    join_url = event.meeting_url
    if not join_url or not event.managed_key or key is None:
        return 0
    row = conn.execute(select(
        managed_events.c.id, managed_events.c.event_id, managed_events.c.desired,
        accounts.c.client_id, profiles.c.provider_name)
        .join(accounts, accounts.c.id == managed_events.c.account_id)
        .join(calendars, calendars.c.id == managed_events.c.calendar_id)
        .join(profiles, profiles.c.id == calendars.c.profile_id)
        .where(managed_events.c.calendar_id == calendar_id,
               managed_events.c.managed_key == event.managed_key)).first()
    if row is None or row.desired is None:
        return 0
    try:
        desired = DesiredEvent.from_stored(
            unseal(key, row.desired, managed_context(calendar_id, row.event_id)))
    except (ValueError, TypeError, KeyError):
        return 0  # an unreadable desired state subscribes to nothing
    if desired.conference_link is not None and desired.conference_link.join_url == join_url:
        return 0  # the app's own (explicit) link: nothing was assigned
    hooks = [sub for sub in desired.subscriptions
             if sub.type == "webhook" and CONFERENCING_ASSIGNED in sub.interactions]
    if not hooks:
        return 0
    # As reads name it: the name the event's link was given, else the provider's own
    # meeting (as its provider names it, the way reads do), else none.
    provider_name = event.conference_name or None
    if provider_name is None:
        entry = find_entry(row.provider_name or "")
        recognised = entry.recognise_meeting(join_url) if entry is not None else None
        provider_name = recognised.provider_name if recognised is not None else None
    queued = 0
    for sub in hooks:
        unique = dedup_key(row.id, sub.uri, CONFERENCING_ASSIGNED, join_url)
        if conn.execute(select(notices.c.id).where(notices.c.dedup_key == unique)).first():
            continue
        body = {"event": {
            "calendar_id": calendar_id, "event_id": row.event_id, "event_uid": event_uid,
            "conferencing": {"provider_name": provider_name, "join_url": join_url}}}
        try:
            with conn.begin_nested():  # a concurrent sync queued it first: keep the write
                conn.execute(insert(notices).values(
                    public_id=new_id("ntf_"), type=CONFERENCING_ASSIGNED,
                    managed_event_id=row.id, dedup_key=unique, client_id=row.client_id,
                    callback_url=sub.uri, sealed_body=seal_body(key, body, unique),
                    created_at=now, next_attempt_at=now, attempts=0))
        except IntegrityError:
            continue
        queued += 1
    return queued


def event_unsealer(keys: DataKeys) -> Callable[[str, str, str], dict[str, Any] | None]:
    """For the deliverer: (account_id, sealed body, dedup_key) -> the body, or None when the
    account (and so its key) is gone or the body does not open."""
    def open_body(account_id: str, sealed: str, dedup: str) -> dict[str, Any] | None:
        key = keys.key(account_id)
        if key is None:
            return None
        try:
            return unseal_body(key, sealed, dedup)
        except (InvalidTag, ValueError):
            return None
    return open_body
