"""The managed key: how an app's own events are named upstream and recognised on the way back.

Writes (services) name an event with it; sync and the mirror recognise the app's own events
by its prefix; the desired state is sealed bound to the managed context.
"""

from __future__ import annotations

import hashlib

MANAGED_PREFIX = "cg1."


def managed_prefix(account_id: str) -> str:
    """Managed keys written upstream start with this, so sync can tell an app's own events."""
    return f"{MANAGED_PREFIX}{account_id}."


def managed_key(account_id: str, calendar_id: str, event_id: str) -> str:
    digest = hashlib.sha256(f"{calendar_id}\x00{event_id}".encode()).hexdigest()[:32]
    return f"{managed_prefix(account_id)}{digest}"


def managed_context(calendar_id: str, event_id: str) -> str:
    """What a managed event's sealed desired state is bound to."""
    return f"managed|{calendar_id}|{event_id}"
