"""What events.list and events.instances answer: a full listing (windowed by timeMin and
timeMax, filtered, expanded with ``singleEvents``) or an incremental one (every object
changed since a sync token, deletions as tombstones), rendered for the caller: ``self``
flags for the calendar's owner, and only free/busy fields when the caller may see no more."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Literal

from .events import BUSY_FIELDS, INCREMENTAL_INSTANCES, TOMBSTONE_FIELDS, Events, times
from .state import Stored
from .timeutil import as_utc

Level = Literal["full", "busy"]


def render(event: dict[str, Any], calendar_id: str, level: Level,
           tombstone: bool = False) -> dict[str, Any]:
    """An event as a reader of ``calendar_id`` sees it."""
    if tombstone and event.get("status") == "cancelled":
        # Google: "deleted events are only guaranteed to have the id field populated".
        return {k: copy.deepcopy(event[k]) for k in TOMBSTONE_FIELDS if k in event}
    if level == "busy":
        return {k: copy.deepcopy(event[k]) for k in BUSY_FIELDS if k in event}
    out = copy.deepcopy(event)
    me = calendar_id.lower()
    for attendee in out.get("attendees") or []:
        if attendee.get("email", "").lower() == me:
            attendee["self"] = True
    for key in ("organizer", "creator"):
        if (out.get(key) or {}).get("email", "").lower() == me:
            out[key]["self"] = True
    return out


def _matches(event: dict[str, Any], params: dict[str, Any]) -> bool:
    for name, kind in (("privateExtendedProperty", "private"),
                       ("sharedExtendedProperty", "shared")):
        props = (event.get("extendedProperties") or {}).get(kind) or {}
        for constraint in params.get(name) or []:
            key, _, value = constraint.partition("=")
            if props.get(key) != value:
                return False
    if params.get("iCalUID") and event.get("iCalUID") != params["iCalUID"]:
        return False
    if params.get("q"):
        text = " ".join(str(event.get(k, "")) for k in ("summary", "description", "location"))
        if params["q"].lower() not in text.lower():
            return False
    updated_min = params.get("updatedMin")
    return not (updated_min and datetime.fromisoformat(
        event["updated"].replace("Z", "+00:00")) < updated_min)


def _window(params: dict[str, Any]) -> tuple[datetime, datetime]:
    low = params.get("timeMin") or datetime.fromisoformat("0001-01-02T00:00:00+00:00")
    high = params.get("timeMax") or datetime.fromisoformat("9999-12-30T00:00:00+00:00")
    return low, high


def full(events: Events, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every matching object (or instance, with singleEvents) overlapping the window."""
    window = _window(params)
    single = params.get("singleEvents", False)
    deleted = params.get("showDeleted", False)
    out: list[dict[str, Any]] = []
    masters = {s.resource["id"]: s.resource for s in events.cal.events.values()
               if s.resource.get("recurrence")}
    for stored in events.cal.events.values():
        event = stored.resource
        master_id = event.get("recurringEventId")
        if master_id:
            master = masters.get(master_id)
            if single or master is None or master.get("status") == "cancelled":
                continue  # exceptions come with their series (or are gone with it)
            if (deleted or event.get("status") != "cancelled") and _matches(master, params) \
                    and events.overlaps(event, window):
                out.append(event)
            continue
        if not _matches(event, params):
            continue
        if event.get("status") == "cancelled":
            if deleted and not event.get("recurrence") and events.overlaps(event, window):
                out.append(event)
            continue
        if event.get("recurrence"):
            if single:
                # Without timeMax an endless series stops somewhere, as Google's does.
                limit = 100_000 if params.get("timeMax") else INCREMENTAL_INSTANCES
                out.extend(events.expand(event, window, deleted, limit))
            elif events.expand(event, window, deleted, limit=1):
                out.append(event)
        elif events.overlaps(event, window):
            out.append(event)
    if params.get("orderBy") == "startTime":
        out.sort(key=lambda e: (as_utc(times(e, events.cal.tz)[0], events.cal.tz), e["id"]))
    elif params.get("orderBy") == "updated":
        out.sort(key=lambda e: (e["updated"], e["id"]))
    return out


def incremental(events: Events, since: int, single: bool) -> list[dict[str, Any]]:
    """Objects changed after sequence ``since``, oldest change first; with singleEvents a
    changed series comes as its instances (up to a horizon) and a deleted one as the
    master's tombstone."""
    changed: list[Stored] = sorted((s for s in events.cal.events.values() if s.seq > since),
                                   key=lambda s: s.seq)
    out: dict[str, dict[str, Any]] = {}
    for stored in changed:
        event = stored.resource
        master_id = event.get("recurringEventId")
        if master_id:
            master = events.cal.events.get(master_id)
            if master is not None and master.resource.get("status") == "cancelled":
                continue
            out[event["id"]] = event
        elif event.get("recurrence") and single and event.get("status") != "cancelled":
            for instance in events.expand(event, None, True):
                out[instance["id"]] = instance
        else:
            out[event["id"]] = event
    return list(out.values())
