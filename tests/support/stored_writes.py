"""Outbox rows as an older release stored them: a desired state sealed in its JSON form."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from gateway.domain.desired import DesiredEvent
from gateway.domain.managed import managed_context
from gateway.domain.sealing import seal
from gateway.persistence.tables import managed_events


def store_as_old_release(gateway: Any, subject: str, calendar_id: str, event_id: str,
                         stored: dict[str, Any]) -> int:
    """Record a write through the service (a due outbox version), then replace its sealed
    desired state by ``stored``, byte for byte what an older release sealed; returns the
    managed event's id."""
    placeholder = DesiredEvent.from_stored(
        {"summary": "placeholder", "start": "2030-01-01", "end": "2030-01-02"})
    managed_id, _ = gateway.writes.upsert(subject, calendar_id, event_id, placeholder)
    key = gateway.writes.keys.key(subject)
    sealed = seal(key, stored, managed_context(calendar_id, event_id))
    with gateway.engine.begin() as conn:
        conn.execute(update(managed_events).where(managed_events.c.id == managed_id)
                     .values(desired=sealed))
    return managed_id
