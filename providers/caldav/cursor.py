"""The opaque sync cursor of a CalDAV calendar, as compact JSON.

Deletions arrive as hrefs (RFC 6578 s3.5.2: a 404 member; in ctag mode: a member missing
from the listing) while the model names resources by UID, and a deleted object cannot be
read any more. So the cursor carries each member's UID (and, in ctag mode, its ETag).
Member hrefs are kept relative to the calendar to keep the cursor small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import CursorExpired
from ..model import SyncCursor

VERSION = 1


@dataclass(frozen=True, slots=True)
class TokenState:
    """sync-collection mode: the server's sync token and href -> UID."""

    token: str
    uids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CtagState:
    """ctag/etag mode (servers without RFC 6578): the calendar's ctag and
    href -> (ETag, UID)."""

    ctag: str | None
    members: dict[str, tuple[str | None, str]] = field(default_factory=dict)


State = TokenState | CtagState


def _relative(base: str, path: str) -> str:
    return path[len(base):] if path.startswith(base) else path


def _absolute(base: str, name: str) -> str:
    return name if name.startswith("/") else base + name


def encode(state: State, calendar_path: str) -> SyncCursor:
    base = calendar_path.rstrip("/") + "/"
    body: dict[str, Any]
    if isinstance(state, TokenState):
        body = {"v": VERSION, "k": "t", "t": state.token,
                "u": {_relative(base, h): uid for h, uid in state.uids.items()}}
    else:
        body = {"v": VERSION, "k": "c", "c": state.ctag,
                "m": {_relative(base, h): [etag, uid]
                      for h, (etag, uid) in state.members.items()}}
    return SyncCursor(json.dumps(body, separators=(",", ":"), ensure_ascii=False))


def decode(cursor: SyncCursor, calendar_path: str) -> State:
    """The state a cursor carries; CursorExpired for anything this adapter did not write."""
    base = calendar_path.rstrip("/") + "/"
    try:
        body = json.loads(cursor.value)
        if body["v"] != VERSION:
            raise CursorExpired("the cursor comes from another version of the adapter")
        if body["k"] == "t":
            return TokenState(str(body["t"]), {_absolute(base, str(h)): str(uid)
                                               for h, uid in body["u"].items()})
        if body["k"] == "c":
            return CtagState(body["c"], {_absolute(base, str(h)): (m[0], str(m[1]))
                                         for h, m in body["m"].items()})
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise CursorExpired("not a cursor of the CalDAV adapter") from exc
    raise CursorExpired("not a cursor of the CalDAV adapter")
