"""The opaque sync cursor of a CalDAV calendar, as compact JSON.

Deletions arrive as hrefs (RFC 6578 s3.5.2: a 404 member; in ctag mode: a member missing
from the listing) while the model names resources by UID, and a deleted object cannot be
read any more. So the cursor carries each member's UID (and, in ctag mode, its ETag).
Member hrefs are kept relative to the calendar to keep the cursor small.

It also carries where the calendar was found (:class:`Where`): its absolute URL, the
owner's calendar-user addresses, its time zone and the HTTP auth scheme the server took.
With these an incremental sync goes straight to the calendar, without principal discovery
or a PROPFIND first (the sync engine lists calendars on a slower cadence of its own, and
those syncs refresh this). Cursors written before it (no ``w``) still decode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import CursorExpired
from ..model import SyncCursor

VERSION = 1


@dataclass(frozen=True, slots=True)
class Where:
    """How the last sync reached the calendar."""

    url: str  # the calendar's absolute URL
    owner: frozenset[str] = frozenset()  # the owner's calendar-user addresses
    tzid: str | None = None  # the calendar's zone (floating times are read in it)
    auth: str | None = None  # "basic", "digest", "bearer", or None: no auth taken


@dataclass(frozen=True, slots=True)
class TokenState:
    """sync-collection mode: the server's sync token and href -> UID."""

    token: str
    uids: dict[str, str] = field(default_factory=dict)
    where: Where | None = None


@dataclass(frozen=True, slots=True)
class CtagState:
    """ctag/etag mode (servers without RFC 6578): the calendar's ctag and
    href -> (ETag, UID)."""

    ctag: str | None
    members: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    where: Where | None = None


State = TokenState | CtagState


# A 5,000-member calendar's cursor is read and written on every sync: the member paths
# are converted inline (no call per member).


def encode(state: State, calendar_path: str) -> SyncCursor:
    base = calendar_path.rstrip("/") + "/"
    n = len(base)
    body: dict[str, Any]
    if isinstance(state, TokenState):
        body = {"v": VERSION, "k": "t", "t": state.token,
                "u": {h[n:] if h.startswith(base) else h: uid for h, uid in state.uids.items()}}
    else:
        body = {"v": VERSION, "k": "c", "c": state.ctag,
                "m": {h[n:] if h.startswith(base) else h: [etag, uid]
                      for h, (etag, uid) in state.members.items()}}
    if state.where is not None:
        w = state.where
        body["w"] = {"u": w.url, "o": sorted(w.owner), "z": w.tzid, "a": w.auth}
    return SyncCursor(json.dumps(body, separators=(",", ":"), ensure_ascii=False))


def decode(cursor: SyncCursor, calendar_path: str) -> State:
    """The state a cursor carries; CursorExpired for anything this adapter did not write."""
    base = calendar_path.rstrip("/") + "/"
    try:
        body = json.loads(cursor.value)
        if body["v"] != VERSION:
            raise CursorExpired("the cursor comes from another version of the adapter")
        where = _where(body.get("w"))
        if body["k"] == "t":  # JSON object keys are always strings
            return TokenState(str(body["t"]), {h if h[:1] == "/" else base + h: str(uid)
                                               for h, uid in body["u"].items()}, where)
        if body["k"] == "c":
            return CtagState(body["c"], {h if h[:1] == "/" else base + h: (m[0], str(m[1]))
                                         for h, m in body["m"].items()}, where)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise CursorExpired("not a cursor of the CalDAV adapter") from exc
    raise CursorExpired("not a cursor of the CalDAV adapter")


def _where(value: Any) -> Where | None:
    if value is None:
        return None
    url, tzid, auth = value["u"], value["z"], value["a"]
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ValueError("not a calendar URL")
    return Where(url, frozenset(str(a) for a in value["o"]),
                 tzid if isinstance(tzid, str) else None,
                 auth if isinstance(auth, str) else None)
