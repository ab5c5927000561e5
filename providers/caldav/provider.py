"""The CalDAV provider (iCloud, Fastmail, Nextcloud, Radicale, Xandikos, ...).

caldav's client is blocking, so every operation runs as one plain function in a worker
thread (``anyio.to_thread``): the wire calls and the iCalendar parsing and expansion, which
is CPU-heavy, both stay off the event loop.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from functools import partial
from typing import Literal, TypeVar, get_args
from urllib.parse import unquote, urljoin, urlsplit

import anyio.to_thread

from ..errors import Conflict, InvalidInput, NotFound, ProviderError
from ..model import (
    AccountInfo,
    Calendar,
    Capabilities,
    ChangeSet,
    EventDraft,
    EventPatch,
    FreeBusyBlock,
    Participation,
    SyncCursor,
    TimeWindow,
    Written,
)
from ..registry import ProviderOptions
from . import cursor as cursors
from . import fields, mapping
from .client import CalDavClient, CollectionProps, ConnectionSettings, StoredObject
from .davxml import href_path
from .errors import PreconditionFailed, translate
from .presets import normalise_url, resolve_server_url
from .sync import CalendarSync, SyncMode, read_object

T = TypeVar("T")
log = logging.getLogger(__name__)
FreeBusyMode = Literal["auto", "native", "computed"]
FREE_BUSY_QUERY = "{urn:ietf:params:xml:ns:caldav}free-busy-query"


def managed_name(managed_key: str) -> str:
    """The member name a managed event is created under: the same for every retry, so a
    retry after a lost answer meets the first attempt (``If-None-Match: *`` gives 412)."""
    return f"calgate-{hashlib.sha256(managed_key.encode()).hexdigest()[:40]}.ics"


class CalDavProvider:
    """A :class:`providers.protocol.CalendarProvider` over one CalDAV account."""

    name = "caldav"
    capabilities = Capabilities(writable=True, free_busy=True, incremental_sync=True,
                                create_calendar=True, participation_status=True,
                                recurring_writes=True)

    def __init__(self, client: CalDavClient, *, server: str, username: str,
                 sync_mode: SyncMode = "auto", free_busy_mode: FreeBusyMode = "auto",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.client = client
        self.server = server
        self.username = username
        self.sync_mode: SyncMode = sync_mode
        self.free_busy_mode: FreeBusyMode = free_busy_mode
        self.clock = clock

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        try:
            return await anyio.to_thread.run_sync(partial(function, *args))
        except ProviderError:
            raise
        except Exception as exc:
            # The wire calls translate their own failures; this catches the rest (an
            # object that will not parse when answering an invitation, a library
            # surprise), so that nothing but the provider error tree leaves the adapter.
            # The class only: a library's message may quote a response body (event text).
            log.warning("CalDAV %s failed unexpectedly (%s)", function.__name__,
                        type(exc).__name__)
            raise translate(exc, host=self.client.host, what=function.__name__) from exc

    # -- helpers (blocking) -----------------------------------------------------------

    def _owner(self) -> frozenset[str]:
        addresses = set(self.client.principal().addresses)
        if "@" in self.username:
            addresses.add(self.username.lower())
        return frozenset(addresses)

    def _calendar_url(self, calendar_id: str) -> str:
        home = self.client.principal().home_url
        home_path = unquote(urlsplit(home).path).rstrip("/") + "/"
        if not calendar_id.startswith(home_path) or ".." in calendar_id:
            raise NotFound(f"no calendar {calendar_id} in this account")
        return urljoin(home, href_path(calendar_id.rstrip("/") + "/"))

    def _object_url(self, obj: StoredObject) -> str:
        return urljoin(self.client.principal().home_url, href_path(obj.path))

    def _props(self, url: str) -> CollectionProps:
        found = self.client.collections(url, depth=0)
        if not found or not mapping.holds_events(found[0]):
            raise NotFound(f"{urlsplit(url).path} is not an event calendar")
        return found[0]

    def _find(self, calendar_id: str, resource_id: str) -> tuple[str, StoredObject | None]:
        url = self._calendar_url(calendar_id)
        return url, self.client.find_by_uid(url, resource_id)

    # -- account and calendars --------------------------------------------------------

    async def verify(self) -> AccountInfo:
        """Look the principal up with the credentials (a wrong password raises
        Unauthorized; on iCloud with the app-specific-password hint)."""
        principal = await self._run(self.client.principal)
        # The principal's origin names the server however the URL was typed; a server
        # without authentication (a personal Xandikos) has no user name.
        parts = urlsplit(principal.principal_url)
        who = self.username or unquote(parts.path)
        # The principal's DAV:displayname is the person's name where the server keeps one
        # (many echo the user name: that is no name). The zone is the primary calendar's
        # calendar-timezone, which the gateway reads off the calendar list.
        shown = (principal.display_name or "").strip()
        return AccountInfo(profile_name=self.username or shown or who,
                           upstream_id=f"{parts.scheme}://{parts.netloc}|{who}",
                           name=shown if shown and shown not in (self.username, who) else None)

    def _list_calendars(self) -> list[Calendar]:
        home = self.client.principal().home_url
        found = [p for p in self.client.collections(home, depth=1) if mapping.holds_events(p)]
        return [mapping.calendar_from_props(p, primary=i == 0) for i, p in enumerate(found)]

    async def list_calendars(self) -> list[Calendar]:
        """Event calendars under the calendar home; read-only from
        current-user-privilege-set (RFC 3744 s5.4), the first one primary."""
        return await self._run(self._list_calendars)

    def _create_calendar(self, name: str, color: str | None) -> Calendar:
        if any(c.name.casefold() == name.casefold() for c in self._list_calendars()):
            raise Conflict(f"a calendar named {name!r} exists")
        home = self.client.principal().home_url
        path = f"{unquote(urlsplit(home).path).rstrip('/')}/{uuid.uuid4().hex}/"
        self.client.make_calendar(urljoin(home, href_path(path)), name, color)
        return Calendar(calendar_id=path, name=name, color=mapping.normalise_color(color))

    async def create_calendar(self, name: str, color: str | None) -> Calendar:
        """MKCALENDAR (RFC 4791 s5.3.1); a calendar of the same name is a Conflict."""
        return await self._run(self._create_calendar, name, color)

    # -- sync -------------------------------------------------------------------------

    def _sync(self, calendar_id: str, cursor: SyncCursor | None,
              window: TimeWindow) -> ChangeSet:
        path = calendar_id.rstrip("/") + "/"
        state = cursors.decode(cursor, path) if cursor is not None else None
        where = state.where if state is not None else None
        if where is None or self.client.known_principal is not None \
                or unquote(urlsplit(where.url).path) != path or ".." in path:
            return self._sync_found(calendar_id, state, window)
        # The cursor says where the calendar is and whose it is: no principal discovery.
        # (Once this provider has looked the principal up, e.g. to list the calendars,
        # the path above runs instead and refreshes what the cursor remembers.)
        self.client.remember_auth(where.auth)
        props = None
        if not isinstance(state, cursors.TokenState) or self.sync_mode == "ctag":
            props = self._props(where.url)  # the ctag; a token needs no PROPFIND
        tzid = where.tzid if props is None else mapping.calendar_tzid(props)
        job = CalendarSync(self.client, where.url, path, window, mapping.zone_named(tzid),
                           where.owner, cursors.Where(where.url, where.owner, tzid))
        return job.run(state, props, self.sync_mode)

    def _sync_found(self, calendar_id: str, state: cursors.State | None,
                    window: TimeWindow) -> ChangeSet:
        """Sync after looking the calendar up: principal, calendar home, PROPFIND."""
        url = self._calendar_url(calendar_id)
        props = self._props(url)
        tzid, owner = mapping.calendar_tzid(props), self._owner()
        job = CalendarSync(self.client, url, unquote(urlsplit(url).path), window,
                           mapping.zone_named(tzid), owner, cursors.Where(url, owner, tzid))
        return job.run(state, props, self.sync_mode)

    @staticmethod
    def _zone(props: CollectionProps) -> tzinfo | None:
        return mapping.zone_named(mapping.calendar_tzid(props))

    async def sync(self, calendar_id: str, cursor: SyncCursor | None,
                   window: TimeWindow) -> ChangeSet:
        """sync-collection (RFC 6578) where the server has it, else ctag + ETag diff;
        changed objects expanded into their instances inside ``window``. With a cursor
        from an earlier sync, straight to the calendar: one REPORT (token mode) or one
        PROPFIND (ctag mode), plus what fetching the changes takes."""
        return await self._run(self._sync, calendar_id, cursor, window)

    # -- writing ----------------------------------------------------------------------

    def _organizer(self) -> str | None:
        if "@" in self.username:
            return self.username
        addresses = self.client.principal().addresses
        return addresses[0] if addresses else None

    def _build(self, draft: EventDraft, uid: str, sequence: int,
               stored: str | None = None) -> str:
        """The object to PUT; ``stored`` (an update's current object) keeps its alarms
        when the client's reminders were create-only."""
        organizer = self._organizer() if draft.attendees else None
        alarms = fields.alarms_of(stored) if stored and draft.reminders_create_only \
            else None
        return mapping.build_event(draft, uid=uid, stamp=self.clock(), sequence=sequence,
                                   organizer=organizer, alarms=alarms)

    def _replace(self, url: str, obj: StoredObject, draft: EventDraft, uid: str,
                 if_match: str | None) -> Written:
        text = self._build(draft, uid, mapping.sequence_of(obj.data) + 1, obj.data)
        try:
            return Written(uid, self.client.put(url, text, if_match=if_match))
        except PreconditionFailed:
            raise Conflict(f"event {uid} changed upstream since it was read") from None

    def _put_event(self, calendar_id: str, draft: EventDraft, resource_id: str | None,
                   etag: str | None) -> Written:
        url = self._calendar_url(calendar_id)
        if resource_id:
            existing = self.client.find_by_uid(url, resource_id)
            if existing is not None:
                return self._replace(self._object_url(existing), existing, draft, resource_id,
                                     etag)
            if etag:
                raise NotFound(f"event {resource_id} is gone upstream")
        target = url + managed_name(draft.managed_key)
        uid = resource_id or f"calgate-{uuid.uuid4()}"
        try:
            return Written(uid, self.client.put(target, self._build(draft, uid, 0),
                                                create_only=True))
        except PreconditionFailed:
            pass  # an earlier attempt whose answer was lost created it: update that one
        existing = self.client.get(target)
        if existing is None or mapping.managed_key_of(existing.data) != draft.managed_key:
            raise Conflict(f"another object is stored where managed event "
                           f"{draft.managed_key!r} belongs")
        return self._replace(target, existing, draft, mapping.uid_of(existing.data) or uid,
                             existing.etag)

    async def put_event(self, calendar_id: str, draft: EventDraft,
                        resource_id: str | None, etag: str | None) -> Written:
        """Create at a member name derived from the managed key with ``If-None-Match: *``
        (idempotent), or replace with ``If-Match`` when an etag is given (412: Conflict)."""
        return await self._run(self._put_event, calendar_id, draft, resource_id, etag)

    def _delete_event(self, calendar_id: str, resource_id: str, etag: str | None) -> None:
        _, existing = self._find(calendar_id, resource_id)
        if existing is None:
            return
        try:
            self.client.delete(self._object_url(existing), if_match=etag)
        except PreconditionFailed:
            raise Conflict(f"event {resource_id} changed upstream since it was read") from None

    async def delete_event(self, calendar_id: str, resource_id: str, etag: str | None) -> None:
        """DELETE (with If-Match when an etag is given); an event already gone is fine."""
        await self._run(self._delete_event, calendar_id, resource_id, etag)

    def _patch_event(self, calendar_id: str, resource_id: str, patch: EventPatch) -> Written:
        _, existing = self._find(calendar_id, resource_id)
        if existing is None:
            raise NotFound(f"no event {resource_id}")
        text = mapping.patch_object(existing.data, patch, stamp=self.clock())
        try:
            return Written(resource_id, self.client.put(self._object_url(existing), text,
                                                        if_match=existing.etag))
        except PreconditionFailed:
            raise Conflict(f"event {resource_id} changed upstream meanwhile") from None

    async def patch_event(self, calendar_id: str, resource_id: str,
                          patch: EventPatch) -> Written:
        """Replace only the patch's properties in the stored object, If-Match its ETag."""
        return await self._run(self._patch_event, calendar_id, resource_id, patch)

    def _set_participation(self, calendar_id: str, resource_id: str,
                           instance_id: str | None, status: Participation) -> None:
        url, existing = self._find(calendar_id, resource_id)
        if existing is None:
            raise NotFound(f"no event {resource_id}")
        original = mapping.parse_instance_id(resource_id, instance_id)
        zone = self._zone(self._props(url)) if original is not None else None
        text = mapping.set_participation(existing.data, owner=self._owner(), status=status,
                                         original=original, zone=zone)
        try:
            self.client.put(self._object_url(existing), text, if_match=existing.etag)
        except PreconditionFailed:
            raise Conflict(f"event {resource_id} changed upstream meanwhile") from None

    async def set_participation(self, calendar_id: str, resource_id: str,
                                instance_id: str | None, status: Participation) -> None:
        """Set the owner's PARTSTAT on the whole event or on one instance's override."""
        await self._run(self._set_participation, calendar_id, resource_id, instance_id,
                        status)

    # -- free/busy --------------------------------------------------------------------

    def _busy(self, calendar_id: str, window: TimeWindow) -> list[FreeBusyBlock]:
        url = self._calendar_url(calendar_id)
        props = self._props(url)
        native = FREE_BUSY_QUERY in props.reports
        if self.free_busy_mode == "native" or (self.free_busy_mode == "auto" and native):
            return mapping.parse_free_busy(self.client.free_busy(url, window.start, window.end))
        owner, zone = self._owner(), self._zone(props)
        blocks = []
        for obj in self.client.query_range(url, window.start, window.end):
            resource = read_object(obj, window, zone=zone, owner=owner)
            for e in resource.events if resource else ():
                if e.transparency == "transparent" or e.status == "cancelled" \
                        or e.participation_status == "declined":
                    continue
                blocks.append(FreeBusyBlock(e.start, e.end,
                                            "tentative" if e.status == "tentative" else "busy"))
        return sorted(blocks, key=lambda b: mapping.to_utc(b.start).isoformat())

    def _free_busy(self, calendar_ids: Sequence[str],
                   window: TimeWindow) -> list[tuple[str, FreeBusyBlock]]:
        return [(c, block) for c in calendar_ids for block in self._busy(c, window)]

    async def free_busy(self, calendar_ids: Sequence[str],
                        window: TimeWindow) -> list[tuple[str, FreeBusyBlock]]:
        """free-busy-query REPORT (RFC 4791 s7.10) where the calendar supports it, else
        computed from the expanded events (opaque, not cancelled, not declined)."""
        return await self._run(self._free_busy, calendar_ids, window)

    async def close(self) -> None:
        await self._run(self.client.close)


def _choice(credentials: Mapping[str, str], key: str, allowed: tuple[str, ...]) -> str:
    value = credentials.get(key, "") or allowed[0]
    if value not in allowed:
        raise InvalidInput(f"{key} must be one of {', '.join(allowed)}")
    return value


def open_account(credentials: Mapping[str, str], options: ProviderOptions) -> CalDavProvider:
    """Open a CalDAV account (no network yet): ``server_url`` and/or ``preset``
    (icloud, fastmail, nextcloud), ``username``, ``password``, optional ``ca_bundle`` (PEM
    of a private CA), ``sync`` (auto, token, ctag) and ``free_busy`` (auto, native,
    computed) to force one of the two ways."""
    username = credentials.get("username", "")
    server = resolve_server_url(credentials.get("server_url", ""),
                                credentials.get("preset", ""), username)
    settings = ConnectionSettings(
        url=normalise_url(server), username=username, password=credentials.get("password", ""),
        timeout=options.timeout, user_agent=options.user_agent,
        ca_bundle=credentials.get("ca_bundle", ""),
        policy=options.outbound)
    sync_mode = _choice(credentials, "sync", get_args(SyncMode))
    free_busy_mode = _choice(credentials, "free_busy", get_args(FreeBusyMode))
    return CalDavProvider(CalDavClient(settings), server=server, username=username,
                          sync_mode=sync_mode,  # type: ignore[arg-type]
                          free_busy_mode=free_busy_mode)  # type: ignore[arg-type]


def open_icloud_account(credentials: Mapping[str, str],
                        options: ProviderOptions) -> CalDavProvider:
    """:func:`open_account` with the iCloud preset unless the credentials name a server:
    an Apple ID may be any email address, so its domain says nothing about the server."""
    if not credentials.get("server_url") and not credentials.get("preset"):
        credentials = {**credentials, "preset": "icloud"}
    return open_account(credentials, options)


__all__ = ["CalDavProvider", "managed_name", "open_account", "open_icloud_account"]
