"""GoogleProvider: one Google account through google-api-python-client (ARCHITECTURE.md s5).

Every wire call runs in a worker thread (``anyio.to_thread``) and is retried here when
Google throttles it or fails (:mod:`.retry`); everything else it raises is already one of
:mod:`providers.errors` (:mod:`.errors`). The access token is refreshed by google-auth:
before a call when it is about to expire, and once after a 401.

Managed events carry the draft's ``managed_key`` in ``extendedProperties.private``. A
create first looks the key up (``privateExtendedProperty``), so a retry after a lost answer
patches the event it made; and it inserts under an id derived from the key, so even an
insert httplib2 resent by itself after a dropped connection answers 409 instead of making
a second event (the 409 then becomes a patch of that event, undeleting it if need be).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread

from ..errors import Conflict, Forbidden, InvalidInput, NotFound, ProviderError, Unavailable
from ..model import (
    AccountInfo,
    Calendar,
    Capabilities,
    ChangeSet,
    Event,
    EventDraft,
    EventPatch,
    FreeBusyBlock,
    Participation,
    PushChannel,
    Resource,
    SyncCursor,
    TimeWindow,
    Written,
)
from ..registry import ProviderOptions
from . import mapping, oauth
from .client import EventsPage, GoogleClient, GoogleEvent
from .config import GoogleEndpoints, GoogleSettings, RetryPolicy, settings_of
from .credentials import AccountSecrets
from .errors import Duplicate, PreconditionFailed
from .retry import with_retries
from .sync import decode, encode, group_full, in_window, plan_incremental

T = TypeVar("T")
log = logging.getLogger(__name__)
FREEBUSY_SPAN = timedelta(days=90)  # freeBusy refuses longer spans (timeRangeTooLong)
FREEBUSY_CALENDARS = 50  # calendarExpansionMax's maximum

__all__ = ["GoogleEndpoints", "GoogleProvider", "GoogleSettings", "RetryPolicy",
           "open_account"]


class GoogleProvider:
    """A :class:`providers.protocol.CalendarProvider` (plus ``PushCapable`` and
    ``Revocable``) over one Google account."""

    name = "google"
    capabilities = Capabilities(writable=True, free_busy=True, incremental_sync=True,
                                native_push=True, server_side_expansion=True,
                                create_calendar=True, participation_status=True,
                                recurring_writes=True, resources=True)

    def __init__(self, client: GoogleClient, retry: RetryPolicy | None = None) -> None:
        self.client = client
        self.retry = retry or RetryPolicy()

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """One wire call in a worker thread, retried while Google throttles or fails."""
        def attempt() -> Awaitable[T]:
            return anyio.to_thread.run_sync(partial(function, *args))
        return await with_retries(self.retry, attempt)

    async def _pure(self, function: Callable[..., T], *args: Any) -> T:
        """Mapping work in a worker thread; an answer it cannot read is Unavailable."""
        try:
            return await anyio.to_thread.run_sync(partial(function, *args))
        except ProviderError:
            raise
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            # The class only: the message may quote a field of the event.
            log.warning("unreadable answer from Google in %s (%s)", function.__name__,
                        type(exc).__name__)
            raise Unavailable(f"Google sent an answer Calgate cannot read "
                              f"({type(exc).__name__})") from exc

    # -- account and calendars ------------------------------------------------------------

    async def verify(self) -> AccountInfo:
        """The primary calendar's id is the account's email address: asking for it needs
        only calendar.calendarlist.readonly, no email/openid scope."""
        entry = await self._call(self.client.calendar_entry, "primary")
        return mapping.account_from_primary(entry)

    async def list_calendars(self) -> list[Calendar]:
        """The calendar list; read-only where the access role is reader or freeBusyReader."""
        calendars: list[Calendar] = []
        token: str | None = None
        while True:
            page = await self._call(self.client.calendar_page, token)
            calendars += await self._pure(
                lambda items: [mapping.calendar_from_entry(e) for e in items],
                page.get("items") or [])
            token = page.get("nextPageToken")
            if not token:
                return calendars

    async def create_calendar(self, name: str, color: str | None) -> Calendar:
        """calendars.insert (then the colour on the calendar-list entry). A calendar of the
        same name the account can write is a Conflict, so a retry never makes two."""
        chosen = mapping.normalise_color(color) if color else None
        if color and chosen is None:
            raise InvalidInput(f"not a #rrggbb colour: {color!r}")
        if any(c.name.casefold() == name.casefold() and not c.readonly
               for c in await self.list_calendars()):
            raise Conflict(f"a calendar named {name!r} exists")
        created = await self._call(self.client.insert_calendar, name)
        if chosen:
            await self._call(self.client.color_calendar, created["id"], chosen)
        return Calendar(calendar_id=created["id"], name=created.get("summary") or name,
                        color=chosen, tzid=created.get("timeZone"))

    async def list_resources(self) -> list[Resource]:
        """The Workspace's calendar resources (Admin SDK resources.calendars.list for
        ``my_customer``), every page. Google answers 403 (Forbidden) unless the user is an
        administrator allowed to read calendar resources, and for consumer accounts."""
        rooms: list[Resource] = []
        token: str | None = None
        while True:
            page = await self._call(self.client.resource_page, token)
            rooms += [r for r in map(mapping.resource_from_directory, page.get("items") or [])
                      if r is not None]
            token = page.get("nextPageToken")
            if not token:
                return rooms

    # -- sync -----------------------------------------------------------------------------

    async def _list_all(self, fetch: Callable[[dict[str, Any]], EventsPage],
                        params: dict[str, Any]) -> tuple[list[GoogleEvent], EventsPage]:
        """Every page of a listing; returns the items and the last page."""
        items: list[GoogleEvent] = []
        page_params = dict(params)
        while True:
            page = await self._call(fetch, page_params)
            items += page.get("items") or []
            if not page.get("nextPageToken"):
                return items, page
            page_params = {**params, "pageToken": page["nextPageToken"]}

    async def sync(self, calendar_id: str, cursor: SyncCursor | None,
                   window: TimeWindow) -> ChangeSet:
        """events.list (singleEvents, showDeleted): in full within the window, or since the
        cursor's sync token (410 raises CursorExpired); see :mod:`.sync`."""
        if cursor is not None:
            state = decode(cursor)
            if state.window == window:
                return await self._incremental(calendar_id, state.token, window)
        return await self._full(calendar_id, window)

    async def _full(self, calendar_id: str, window: TimeWindow) -> ChangeSet:
        params = {"singleEvents": True, "showDeleted": True,
                  "timeMin": mapping.rfc3339(window.start),
                  "timeMax": mapping.rfc3339(window.end)}
        items, last = await self._list_all(partial(self.client.events_page, calendar_id),
                                            params)
        changed = await self._pure(group_full, items, window, last.get("timeZone"))
        token = last.get("nextSyncToken")
        return ChangeSet(changed=changed, cursor=encode(token, window) if token else None,
                         full=True)

    async def _incremental(self, calendar_id: str, token: str,
                           window: TimeWindow) -> ChangeSet:
        params = {"syncToken": token, "singleEvents": True, "showDeleted": True}
        items, last = await self._list_all(partial(self.client.events_page, calendar_id),
                                            params)
        tz = last.get("timeZone")
        delta = await self._pure(plan_incremental, items, window, tz)
        for series_id in sorted(delta.series):
            try:
                delta.changed[series_id] = await self._instances(calendar_id, series_id,
                                                                 window, tz)
            except NotFound:  # 404, or 410: the series was deleted meanwhile
                delta.deleted.add(series_id)
        next_token = last.get("nextSyncToken")
        return ChangeSet(changed=delta.changed, deleted=tuple(sorted(delta.deleted)),
                         cursor=encode(next_token, window) if next_token else None)

    async def _instances(self, calendar_id: str, series_id: str, window: TimeWindow,
                         tz: str | None) -> list[Event]:
        params = {"timeMin": mapping.rfc3339(window.start),
                  "timeMax": mapping.rfc3339(window.end), "showDeleted": False}
        fetch = partial(self.client.instances_page, calendar_id, series_id)
        items, _ = await self._list_all(fetch, params)
        return await self._pure(in_window, items, window, tz)

    # -- writing --------------------------------------------------------------------------

    async def put_event(self, calendar_id: str, draft: EventDraft,
                        resource_id: str | None, etag: str | None) -> Written:
        """Patch the event (If-Match when an etag is given: 412 is a Conflict), or create
        it idempotently (see the module docstring)."""
        body = await self._pure(mapping.body_from_draft, draft)
        updates = mapping.send_updates(draft)
        if resource_id:
            try:
                return await self._patch(calendar_id, resource_id, body, updates, etag)
            except NotFound:
                if etag:
                    raise
        found = await self._find_managed(calendar_id, draft.managed_key)
        if found is not None:
            return await self._patch(calendar_id, found["id"], body, updates, None)
        try:
            event = await self._call(self.client.insert_event, calendar_id,
                                     mapping.insert_body(draft), updates)
        except Duplicate:
            # An earlier attempt made it and its answer was lost, or the client deleted it
            # and writes the same key again: patch it (back to life).
            return await self._patch(calendar_id, mapping.managed_event_id(draft.managed_key),
                                     body, updates, None)
        return Written(event["id"], event.get("etag"))

    async def _patch(self, calendar_id: str, event_id: str, body: dict[str, Any],
                     updates: str, etag: str | None) -> Written:
        try:
            event = await self._call(self.client.patch_event, calendar_id, event_id, body,
                                     updates, etag)
        except PreconditionFailed:
            raise Conflict(f"event {event_id} changed upstream since it was read") from None
        return Written(event["id"], event.get("etag"))

    async def _find_managed(self, calendar_id: str, managed_key: str) -> GoogleEvent | None:
        page = await self._call(self.client.events_page, calendar_id, {
            "privateExtendedProperty": f"{mapping.MANAGED_KEY}={managed_key}",
            "showDeleted": False})
        items = page.get("items") or []
        return items[0] if items else None

    async def delete_event(self, calendar_id: str, resource_id: str,
                           etag: str | None) -> None:
        """events.delete (If-Match when given); already gone (404, 410) is fine."""
        try:
            await self._call(self.client.delete_event, calendar_id, resource_id, "all", etag)
        except PreconditionFailed:
            raise Conflict(f"event {resource_id} changed upstream since it was read") from None
        except NotFound:
            return

    async def patch_event(self, calendar_id: str, resource_id: str,
                          patch: EventPatch) -> Written:
        """events.patch with only the patch's fields, If-Match the version just read (412:
        Conflict, retried by the outbox); a series is refused: its instances follow it."""
        body = await self._pure(mapping.body_from_patch, patch)
        event = await self._call(self.client.get_event, calendar_id, resource_id)
        if event.get("recurrence") or event.get("recurringEventId"):
            raise InvalidInput(f"event {resource_id} is recurring: it is not edited here")
        if event.get("status") == "cancelled":
            raise NotFound(f"event {resource_id} is deleted upstream")
        # Guests hear of the change as they would from Google Calendar's own "send".
        return await self._patch(calendar_id, resource_id, body, "all", event.get("etag"))

    async def set_participation(self, calendar_id: str, resource_id: str,
                                instance_id: str | None, status: Participation) -> None:
        """Patch only the account's own attendee entry (``attendeesOmitted``: Google then
        leaves the other attendees alone); an instance id answers for that instance."""
        answer = mapping.answer_of(status)
        target = instance_id or resource_id
        event = await self._call(self.client.get_event, calendar_id, target)
        me = next((a for a in event.get("attendees") or [] if a.get("self")), None)
        if me is None:
            raise Forbidden(f"the account is not invited to event {target}")
        body = {"attendeesOmitted": True,
                "attendees": [{"email": me["email"], "responseStatus": answer}]}
        await self._patch(calendar_id, target, body, "all", event.get("etag"))

    # -- free/busy ------------------------------------------------------------------------

    async def free_busy(self, calendar_ids: Sequence[str],
                        window: TimeWindow) -> list[tuple[str, FreeBusyBlock]]:
        """freebusy.query in pieces of at most 90 days and 50 calendars (Google's limits);
        a block cut by a piece's edge is joined again."""
        found: dict[str, list[FreeBusyBlock]] = {c: [] for c in calendar_ids}
        ids = list(found)
        for piece in mapping.chunks(window, FREEBUSY_SPAN):
            for first in range(0, len(ids), FREEBUSY_CALENDARS):
                batch = ids[first:first + FREEBUSY_CALENDARS]
                answer = await self._call(self.client.free_busy, {
                    "timeMin": mapping.rfc3339(piece.start),
                    "timeMax": mapping.rfc3339(piece.end), "timeZone": "UTC",
                    "items": [{"id": c} for c in batch]})
                for calendar_id in batch:
                    _raise_for(calendar_id, answer.get("calendars", {}).get(calendar_id))
                for calendar_id, blocks in (await self._pure(mapping.busy_blocks, answer,
                                                             batch)).items():
                    found[calendar_id] += blocks
        return [(c, block) for c in ids for block in mapping.join(found[c])]

    # -- push and revocation --------------------------------------------------------------

    async def watch(self, calendar_id: str, address: str, token: str, channel_id: str,
                    ttl_seconds: int) -> PushChannel:
        """events.watch: Google POSTs to ``address`` when the calendar's events change."""
        answer = await self._call(self.client.watch, calendar_id, {
            "id": channel_id, "type": "web_hook", "address": address, "token": token,
            "params": {"ttl": str(int(ttl_seconds))}})
        expires = datetime.fromtimestamp(int(answer["expiration"]) / 1000, UTC)
        return PushChannel(channel_id=answer["id"], resource_id=answer["resourceId"],
                           expires_at=expires, calendar_id=calendar_id)

    async def stop_watch(self, channel: PushChannel) -> None:
        """channels.stop; a channel Google no longer knows is fine."""
        try:
            await self._call(self.client.stop_channel, channel.channel_id,
                             channel.resource_id)
        except NotFound:
            return

    async def revoke_upstream(self) -> None:
        """Revoke the refresh token (and with it every access token of the grant)."""
        client = self.client
        await anyio.to_thread.run_sync(partial(
            oauth.revoke_token, client.endpoints, client.secrets.refresh_token,
            timeout=client.timeout))
        client.tokens.drop(client.token_key)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.client.close)


def _raise_for(calendar_id: str, entry: Mapping[str, Any] | None) -> None:
    errors = (entry or {}).get("errors") or []
    if entry is None or not errors:
        if entry is None:
            raise Unavailable(f"freebusy.query did not answer for {calendar_id}")
        return
    reason = errors[0].get("reason", "")
    if reason == "notFound":
        raise NotFound(f"free/busy: Google knows no calendar {calendar_id} for this account")
    raise InvalidInput(f"free/busy for {calendar_id}: Google answered {reason}")


def open_account(credentials: Mapping[str, str], options: ProviderOptions) -> GoogleProvider:
    """Open a Google account (no network yet) from ``refresh_token``, ``client_id`` and
    ``client_secret``; endpoints and retry limits from the options' :class:`GoogleSettings`."""
    settings = settings_of(options)
    client = GoogleClient(AccountSecrets.from_mapping(credentials), settings.endpoints,
                          timeout=options.timeout, user_agent=options.user_agent)
    return GoogleProvider(client, settings.retry)
