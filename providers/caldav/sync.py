"""Incremental sync of one calendar (blocking; the provider runs it in a worker thread).

Two ways to learn what changed:

- ``token``: the sync-collection REPORT (RFC 6578), the server telling us which members
  changed or went since a token. A refused token raises CursorExpired, never a silent
  full listing (caldav's ``disable_fallback`` behaviour).
- ``ctag``: for servers without RFC 6578, the calendar's ctag (calendarserver.org
  getctag) says whether anything changed; if so, a PROPFIND of every member's ETag is
  compared with the ETags the cursor remembers.

Either way the changed members are fetched with calendar-multiget and expanded inside the
window; the cursor remembers each member's UID, since deletions arrive as hrefs.

With a token in hand no PROPFIND comes first: the REPORT itself says "nothing changed"
in one request, and a token the server refuses raises CursorExpired as ever. So an
incremental sync in token mode is that REPORT plus, when something changed, the multiget.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import Literal

from ..errors import CursorExpired
from ..model import ChangeSet, Event, TimeWindow
from . import cursor as cursors
from .client import CalDavClient, CollectionProps, StoredObject
from .mapping import Resource, parse_resource

log = logging.getLogger(__name__)

SyncMode = Literal["auto", "token", "ctag"]
SYNC_COLLECTION = "{DAV:}sync-collection"
Members = dict[str, tuple[str | None, str]]  # member path -> (ETag, UID)


@dataclass(frozen=True, slots=True)
class CalendarSync:
    """Everything one sync of one calendar needs."""

    client: CalDavClient
    url: str  # the calendar's absolute URL
    path: str  # its path: the calendar id
    window: TimeWindow
    zone: tzinfo | None  # where floating times are read
    owner: frozenset[str]  # the owner's calendar-user addresses
    where: cursors.Where | None = None  # how the calendar was reached, for the new cursor

    def run(self, state: cursors.State | None, props: CollectionProps | None,
            mode: SyncMode) -> ChangeSet:
        """Changes since ``state``. ``props`` (the calendar's PROPFIND) may be None only
        when ``state`` holds a sync token and ``mode`` allows token sync: then the token
        decides the mode and no PROPFIND is needed."""
        if mode == "auto":
            if props is None:
                mode = "token" if isinstance(state, cursors.TokenState) else "ctag"
            else:
                mode = "token" if SYNC_COLLECTION in props.reports else "ctag"
        if mode == "token":
            if state is not None and not isinstance(state, cursors.TokenState):
                raise CursorExpired("the cursor was made for ctag sync")
            return self._by_token(state)
        if state is not None and not isinstance(state, cursors.CtagState):
            raise CursorExpired("the cursor was made for sync-collection")
        if props is None:
            raise ValueError("ctag sync needs the calendar's properties")
        return self._by_ctag(state, props.ctag)

    def _by_token(self, state: cursors.TokenState | None) -> ChangeSet:
        reply = self.client.sync_collection(self.url, state.token if state else "")
        changed, deleted, uids, _ = self._apply(state.uids if state else {}, reply.changed,
                                                reply.deleted, full=state is None)
        new_state = cursors.TokenState(reply.token, uids, self._where())
        return ChangeSet(changed=changed, deleted=deleted, full=state is None,
                         cursor=cursors.encode(new_state, self.path))

    def _by_ctag(self, state: cursors.CtagState | None, ctag: str | None) -> ChangeSet:
        if state is not None and ctag is not None and ctag == state.ctag:
            return ChangeSet(cursor=cursors.encode(replace(state, where=self._where()), self.path))
        listing = self.client.member_etags(self.url)
        previous = state.members if state else {}
        changed_paths = {p: e for p, e in listing.items()
                         if e is None or previous.get(p, (None, ""))[0] != e}
        gone = tuple(p for p in previous if p not in listing)
        changed, deleted, uids, etags = self._apply(
            {p: uid for p, (_, uid) in previous.items()}, changed_paths, gone,
            full=state is None)
        members: Members = {p: (etags[p] if p in etags else previous[p][0], uid)
                            for p, uid in uids.items()}
        return ChangeSet(changed=changed, deleted=deleted, full=state is None,
                         cursor=cursors.encode(cursors.CtagState(ctag, members, self._where()),
                                               self.path))

    def _where(self) -> cursors.Where | None:
        """:attr:`where` with the auth scheme the server took (known after the requests)."""
        if self.where is None:
            return None
        return replace(self.where, auth=self.client.auth_scheme)

    def _apply(self, uids: Mapping[str, str], changed_paths: Mapping[str, str | None],
               deleted_paths: Sequence[str], *, full: bool
               ) -> tuple[dict[str, list[Event]], tuple[str, ...], dict[str, str],
                          dict[str, str | None]]:
        """Fetch and expand the changed members; work out which UIDs are gone. Returns
        the changes, the gone UIDs, every member's UID now (path -> UID) and the ETags of
        the members fetched. (Plain path -> UID maps: a 5,000-member calendar costs no
        tuple per member on every sync.)"""
        fetched = {o.path: o for o in self.client.multiget(self.url, list(changed_paths))}
        members: dict[str, str] = {} if full else dict(uids)
        etags: dict[str, str | None] = {}
        changed: dict[str, list[Event]] = {}
        gone: set[str] = set()
        for path in deleted_paths:
            if path in members:
                gone.add(members.pop(path))
        for path in changed_paths:
            old = members.pop(path, None)
            obj = fetched.get(path)
            resource = self._read(obj) if obj is not None else None
            if old is not None and (resource is None or resource.uid != old):
                gone.add(old)
            if obj is not None and resource is not None:
                members[path] = resource.uid
                etags[path] = obj.etag or changed_paths[path]
                changed[resource.uid] = resource.events
        if gone:  # a UID whose object moved to another href is not gone
            gone -= set(members.values())
        return changed, tuple(sorted(gone)), members, etags

    def _read(self, obj: StoredObject) -> Resource | None:
        return read_object(obj, self.window, zone=self.zone, owner=self.owner)


def read_object(obj: StoredObject, window: TimeWindow, *, zone: tzinfo | None,
                owner: frozenset[str]) -> Resource | None:
    """The object's instances in ``window``; None (and a warning) for unreadable data."""
    try:
        return parse_resource(obj.data, window, zone=zone, owner=owner, etag=obj.etag)
    except Exception as exc:  # one broken object upstream must not stop a whole calendar
        # The class only: a parser's message quotes the offending line (event text).
        log.warning("skipping unreadable calendar object %s (%s)", obj.path,
                    type(exc).__name__)
        return None
