"""The sync cursor: Graph's ``@odata.deltaLink`` for one calendar's calendarView, and the
window it was made for.

A deltaLink is bound to the startDateTime/endDateTime of the round that made it (the window
is encoded in the token), so when the sync window moves the provider starts a full round
instead of reusing the link; events that entered the window unchanged would never come
incrementally. https://learn.microsoft.com/graph/delta-query-events

The cursor also names the recurring series seen in the window: a removed occurrence comes
back from delta as a bare ``{"id", "@removed"}`` that does not say which series it belonged
to, so after a removal the provider lists those series again; a series gone whole (every
occurrence removed) is then reported deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from ..errors import CursorExpired
from ..model import SyncCursor, TimeWindow

VERSION = 1


@dataclass(frozen=True, slots=True)
class CursorState:
    delta_link: str
    window: TimeWindow
    series: frozenset[str] = frozenset()


def encode(delta_link: str, window: TimeWindow,
           series: frozenset[str] = frozenset()) -> SyncCursor:
    return SyncCursor(json.dumps({"v": VERSION, "d": delta_link,
                                  "w": [window.start.isoformat(), window.end.isoformat()],
                                  "s": sorted(series)}, separators=(",", ":")))


def decode(cursor: SyncCursor) -> CursorState:
    """The state a cursor carries; CursorExpired for anything this adapter did not write."""
    try:
        body = json.loads(cursor.value)
        if body["v"] != VERSION or not isinstance(body["d"], str) or not body["d"]:
            raise CursorExpired("the cursor comes from another version of the adapter")
        start, end = (datetime.fromisoformat(v) for v in body["w"])
        series = frozenset(str(s) for s in body.get("s") or ())
        return CursorState(body["d"], TimeWindow(start, end), series)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CursorExpired("not a cursor of the Microsoft adapter") from exc


def reusable(state: CursorState, window: TimeWindow) -> bool:
    """Whether the stored deltaLink still serves ``window`` (the same window exactly)."""
    return state.window == window
