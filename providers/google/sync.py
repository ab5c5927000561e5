"""The sync cursor and how Google's listings become ChangeSets.

Google's listing is ``events.list`` with ``singleEvents=true`` and ``showDeleted=true``:
a full one windowed by timeMin/timeMax, an incremental one with the ``syncToken`` (Google
refuses timeMin/timeMax with it, so out-of-window instances are dropped here).

ChangeSet's rule is "a changed resource comes with all its instances in the window". A
non-recurring event is its own resource and its only instance, so an incremental item says
it all: changed (in or out of the window; out of it replaces the instances with none) or
cancelled (deleted). A series is one resource (the master's id) whose instances are items
with ``recurringEventId``; an incremental listing carries only the instances that changed,
so every series touched is listed again in full with ``events.instances`` inside the window
(:attr:`Delta.series`). A cancelled master means the series is gone. Hence the mirror never
keeps a stale instance nor loses an unchanged one, and every instance id appears once.

The cursor also records the window it was made for: when the window moves (the sync engine's
window follows the calendar date), events that entered it unchanged would never come
incrementally, so the provider lists the new window in full instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from ..errors import CursorExpired
from ..model import Event, SyncCursor, TimeWindow
from .client import GoogleEvent
from .mapping import event_from_google, overlaps, resource_of

VERSION = 1


@dataclass(frozen=True, slots=True)
class CursorState:
    token: str
    window: TimeWindow


def encode(token: str, window: TimeWindow) -> SyncCursor:
    return SyncCursor(json.dumps({"v": VERSION, "t": token,
                                  "w": [window.start.isoformat(), window.end.isoformat()]},
                                 separators=(",", ":")))


def decode(cursor: SyncCursor) -> CursorState:
    """The state a cursor carries; CursorExpired for anything this adapter did not write."""
    try:
        body = json.loads(cursor.value)
        if body["v"] != VERSION or not isinstance(body["t"], str):
            raise CursorExpired("the cursor comes from another version of the adapter")
        start, end = (datetime.fromisoformat(v) for v in body["w"])
        return CursorState(body["t"], TimeWindow(start, end))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CursorExpired("not a cursor of the Google adapter") from exc


def in_window(items: list[GoogleEvent], window: TimeWindow,
              calendar_tz: str | None) -> list[Event]:
    """The live items as Events, those outside the window dropped."""
    events = (event_from_google(item, calendar_tz) for item in items
              if item.get("status") != "cancelled")
    return [e for e in events if overlaps(e, window)]


def group_full(items: list[GoogleEvent], window: TimeWindow,
               calendar_tz: str | None) -> dict[str, list[Event]]:
    changed: dict[str, list[Event]] = {}
    for event in in_window(items, window, calendar_tz):
        changed.setdefault(event.resource_id, []).append(event)
    return changed


@dataclass
class Delta:
    """An incremental listing read: what it says outright, and the series to list again."""

    changed: dict[str, list[Event]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    series: set[str] = field(default_factory=set)


def plan_incremental(items: list[GoogleEvent], window: TimeWindow,
                     calendar_tz: str | None) -> Delta:
    delta = Delta()
    for item in items:
        key = resource_of(item)
        if "recurringEventId" in item:
            delta.series.add(key)
        elif item.get("status") == "cancelled":
            delta.deleted.add(key)
        else:  # with singleEvents a non-instance item is a plain event
            delta.changed[key] = in_window([item], window, calendar_tz)
    # A plain event wins over instances of the same id (a series made single again); a
    # cancelled one over both.
    delta.series -= set(delta.changed) | delta.deleted
    for key in delta.deleted:
        delta.changed.pop(key, None)
    return delta
