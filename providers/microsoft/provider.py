"""GraphProvider: one Microsoft 365 or Outlook.com account through Microsoft Graph
(msal for tokens in :mod:`.oauth`, httpx for Graph in :mod:`.client`).

Sync is calendarView/delta over the sync window (:mod:`.sync` keeps the deltaLink). A
recurring series is one resource; when a round touches one, or removes an item that might
be one of its occurrences, the series' instances are listed again from calendarView, so the
mirror always replaces a series whole. A profile granted only ``Calendars.ReadBasic``
(free/busy) still gets subjects and locations from Graph: they are dropped here, before the
mirror. Managed events are created with a ``transactionId`` that carries the managed key,
so a create retried after a lost answer returns the event the first attempt made, and sync
recognises them (calendarView/delta returns the transactionId but cannot expand the
extended property that also holds the key).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from ..errors import Conflict, Forbidden, InvalidInput, NotFound, ProviderError
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
from . import drafts, mapping, sync
from .client import GraphClient
from .config import settings_of
from .credentials import AccountSecrets
from .errors import PreconditionFailed
from .oauth import TokenSource
from .payloads import GraphCalendar, GraphEvent
from .push import CHANNEL_PARAMETER
from .scopes import READ, missing_scopes
from .times import chunks, parse_local, utc_text

SCHEDULE_SPAN = timedelta(days=62)  # getSchedule refuses longer windows
# Outlook resources live at most 4230 minutes (about three days); renew before that.
# https://learn.microsoft.com/graph/api/resources/subscription#subscription-lifetime
MAX_SUBSCRIPTION = timedelta(minutes=4230)
CHANGE_TYPES = "created,updated,deleted"


GRAPH = Capabilities(writable=True, free_busy=True, incremental_sync=True, native_push=True,
                     server_side_expansion=True, create_calendar=True,
                     participation_status=True, recurring_writes=True, resources=True)


class GraphProvider:
    """A :class:`providers.protocol.CalendarProvider` (plus ``PushCapable``,
    ``Revocable`` and, for work or school accounts, ``RoomDirectory``) over one Microsoft
    account."""

    name = "microsoft"
    capabilities = GRAPH  # a work or school account's; a personal one has no rooms

    def __init__(self, client: GraphClient, secrets: AccountSecrets,
                 token: TokenSource | None = None) -> None:
        self.client = client
        self.secrets = secrets
        self.token = token
        # Calendars.ReadBasic alone: the mirror must hold times only.
        self.busy_only = bool(missing_scopes([READ], secrets.scopes))
        if secrets.personal:  # places are a tenant's: Graph has none for personal accounts
            self.capabilities = dataclasses.replace(GRAPH, resources=False)

    # -- account and calendars ------------------------------------------------------------

    async def verify(self) -> AccountInfo:
        """A real call (the calendar list); the default calendar's owner is the mailbox's
        address, the ID token's oid.tid the stable account id."""
        calendars = await self.client.calendars()
        default = next((c for c in calendars if c.get("isDefaultCalendar")),
                       calendars[0] if calendars else None)
        owner = mapping.calendar_owner(default) if default else None
        return AccountInfo(profile_name=owner or self.secrets.account_id,
                           upstream_id=self.secrets.account_id,
                           name=self.secrets.display_name or None,
                           tzid=await self._mailbox_zone(owner))

    async def _mailbox_zone(self, owner: str | None) -> str | None:
        """The mailbox's zone from getSchedule's working hours (work or school accounts:
        personal ones have no getSchedule). Asked over the shortest window; any failure
        leaves the zone unknown rather than failing the link."""
        if not owner or self.secrets.personal:
            return None
        start = datetime.now(UTC).replace(second=0, microsecond=0)
        window = TimeWindow(start, start + timedelta(minutes=drafts.SCHEDULE_INTERVAL_MINUTES))
        try:
            found = await self.client.get_schedule(drafts.schedule_body(owner, window))
        except ProviderError:
            return None
        return next((z for z in map(mapping.zone_from_schedule, found) if z), None)

    async def list_calendars(self) -> list[Calendar]:
        return [mapping.calendar_from_graph(c) for c in await self.client.calendars()]

    async def create_calendar(self, name: str, color: str | None) -> Calendar:
        """POST /me/calendars. Graph cannot take a chosen colour (``hexColor`` is
        read-only), so ``color`` is not applied. A writable calendar of the same name is a
        Conflict, so a retry never makes two."""
        if any(c.name.casefold() == name.casefold() and not c.readonly
               for c in await self.list_calendars()):
            raise Conflict(f"a calendar named {name!r} exists")
        created = await self.client.create_calendar(drafts.calendar_body(name))
        return mapping.calendar_from_graph(created)

    async def list_resources(self) -> list[Resource]:
        """The tenant's rooms (List places). Graph answers 403 (Forbidden) when the grant
        lacks Place.Read.All, which needs an administrator's consent."""
        if self.secrets.personal:
            raise Forbidden("personal Microsoft accounts have no rooms")
        return [r for r in map(mapping.resource_from_room, await self.client.rooms())
                if r is not None]

    # -- sync -----------------------------------------------------------------------------

    async def sync(self, calendar_id: str, cursor: SyncCursor | None,
                   window: TimeWindow) -> ChangeSet:
        """A delta round from the stored deltaLink, or a full one (no cursor, or the window
        moved). A 410 raises CursorExpired: the caller syncs again with None."""
        state = sync.decode(cursor) if cursor else None
        if state is None or not sync.reusable(state, window):
            return await self._full(calendar_id, window)
        items, link = await self.client.delta(calendar_id, "", "", state.delta_link)
        found = mapping.sort_delta(items, window)
        changed = {r: self._text(evs) for r, evs in found.events.items()}
        deleted = set(found.gone) - set(changed)
        series = set(found.series) | (state.series if found.gone else set())
        known = set(state.series)
        if series:
            listed = await self._series(calendar_id, window)
            for series_id in series:
                changed.pop(series_id, None)
                if listed.get(series_id):
                    changed[series_id] = self._text(listed[series_id])
                else:
                    deleted.add(series_id)
            known = (known | set(listed)) - {s for s in series if not listed.get(s)}
        return ChangeSet(changed=changed, deleted=tuple(sorted(deleted)),
                         cursor=sync.encode(link, window, frozenset(known)) if link else None)

    async def _full(self, calendar_id: str, window: TimeWindow) -> ChangeSet:
        items, link = await self.client.delta(calendar_id, utc_text(window.start),
                                              utc_text(window.end), None)
        found = mapping.sort_delta(items, window)
        changed = {r: self._text(evs) for r, evs in found.events.items()}
        series = frozenset(found.series)
        return ChangeSet(changed=changed, full=True,
                         cursor=sync.encode(link, window, series) if link else None)

    async def _series(self, calendar_id: str, window: TimeWindow) -> dict[str, list[Event]]:
        """Every series' live instances in the window, from one calendarView listing."""
        items = await self.client.view(calendar_id, utc_text(window.start),
                                       utc_text(window.end))
        out: dict[str, list[Event]] = {}
        for item in items:
            if item.get("seriesMasterId") and not mapping.is_gone(item):
                event = mapping.event_from_graph(item)
                out.setdefault(event.resource_id, []).append(event)
        return out

    def _text(self, events: list[Event]) -> list[Event]:
        """Events as the mirror may hold them: without any text for a free/busy profile."""
        if not self.busy_only:
            return events
        return [dataclasses.replace(e, summary="", description="", location="", attendees=(),
                                    organizer=None, categories=(), url=None,
                                    meeting_url=None) for e in events]

    # -- writing --------------------------------------------------------------------------

    async def put_event(self, calendar_id: str, draft: EventDraft,
                        resource_id: str | None, etag: str | None) -> Written:
        """PATCH (If-Match when an etag is given: 412 is a Conflict), or an idempotent
        create; an event the client deleted upstream is created again under its key."""
        teams = draft.conferencing and mapping.teams_allowed(
            await self.client.calendar(calendar_id))
        if resource_id:
            try:
                return await self._patch(resource_id, drafts.update_body(draft, teams), etag)
            except NotFound:
                if etag:
                    raise
        created = await self.client.create_event(calendar_id, drafts.create_body(draft, teams))
        return _written(created)

    async def _patch(self, event_id: str, body: dict[str, Any], etag: str | None) -> Written:
        try:
            return _written(await self.client.update_event(event_id, body, etag))
        except PreconditionFailed:
            raise Conflict(f"event {event_id} changed upstream since it was read") from None

    async def delete_event(self, calendar_id: str, resource_id: str,
                           etag: str | None) -> None:
        """DELETE (If-Match when given); already gone is fine."""
        try:
            await self.client.delete_event(resource_id, etag)
        except PreconditionFailed:
            raise Conflict(f"event {resource_id} changed upstream since it was read") from None
        except NotFound:
            return

    async def patch_event(self, calendar_id: str, resource_id: str,
                          patch: EventPatch) -> Written:
        """PATCH only the patch's fields. The gateway sends no series here (the mirror
        marks recurring events, which are not editable); Graph itself refuses what the
        account may not change (an invitation's time: a Forbidden)."""
        try:
            body = drafts.patch_body(patch)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        return await self._patch(resource_id, body, None)

    async def set_participation(self, calendar_id: str, resource_id: str,
                                instance_id: str | None, status: Participation) -> None:
        """accept / tentativelyAccept / decline on the event (or the one instance)."""
        action = drafts.answer_action(status)
        await self.client.answer(instance_id or resource_id, action, drafts.answer_body())

    # -- free/busy ------------------------------------------------------------------------

    async def free_busy(self, calendar_ids: Sequence[str],
                        window: TimeWindow) -> list[tuple[str, FreeBusyBlock]]:
        """getSchedule for a work or school mailbox's default calendar and for calendars
        of other mailboxes; the calendar view elsewhere (personal accounts have no
        getSchedule; a secondary calendar is not what getSchedule reads)."""
        calendars = {c["id"]: c for c in await self.client.calendars()}
        out: list[tuple[str, FreeBusyBlock]] = []
        for calendar_id in calendar_ids:
            entry = calendars.get(calendar_id)
            if entry is None:
                raise NotFound(f"free/busy: no calendar {calendar_id} in this account")
            owner = mapping.calendar_owner(entry)
            if owner and not self.secrets.personal and _schedule_readable(entry):
                try:
                    blocks = await self._schedule(owner, window)
                except Forbidden:
                    blocks = await self._view_busy(calendar_id, window)
            else:
                blocks = await self._view_busy(calendar_id, window)
            out += [(calendar_id, b) for b in blocks]
        return out

    async def _schedule(self, owner: str, window: TimeWindow) -> list[FreeBusyBlock]:
        blocks: list[FreeBusyBlock] = []
        for piece in chunks(window, SCHEDULE_SPAN):
            for info in await self.client.get_schedule(drafts.schedule_body(owner, piece)):
                blocks += mapping.busy_from_schedule(info)
        return blocks

    async def _view_busy(self, calendar_id: str, window: TimeWindow) -> list[FreeBusyBlock]:
        items = await self.client.view(calendar_id, utc_text(window.start),
                                       utc_text(window.end))
        return mapping.busy_from_view(items)

    # -- push and revocation --------------------------------------------------------------

    async def watch(self, calendar_id: str, address: str, token: str, channel_id: str,
                    ttl_seconds: int) -> PushChannel:
        """A Graph subscription on the calendar's events; Graph first POSTs a
        ``validationToken`` to ``address``, which must echo it. ``token`` travels as
        ``clientState``; lifecycle notifications go to the same address, which names
        ``channel_id`` (Graph's notifications name only its subscription)."""
        address = f"{address}?{urlencode({CHANNEL_PARAMETER: channel_id})}"
        answer = await self.client.subscribe({
            "changeType": CHANGE_TYPES, "notificationUrl": address,
            "lifecycleNotificationUrl": address,
            "resource": f"/me/calendars/{calendar_id}/events",
            "expirationDateTime": _expiry(ttl_seconds), "clientState": token})
        return PushChannel(channel_id=channel_id, resource_id=str(answer["id"]),
                           expires_at=_parse(answer["expirationDateTime"]),
                           calendar_id=calendar_id)

    async def renew_watch(self, channel: PushChannel, ttl_seconds: int) -> PushChannel:
        """Extend a subscription (before its roughly three-day expiry)."""
        answer = await self.client.renew(channel.resource_id, _expiry(ttl_seconds))
        return dataclasses.replace(channel, expires_at=_parse(answer["expirationDateTime"]))

    async def stop_watch(self, channel: PushChannel) -> None:
        try:
            await self.client.unsubscribe(channel.resource_id)
        except NotFound:
            return

    async def revoke_upstream(self) -> None:
        """Graph cannot revoke one delegated grant: delete this app's subscriptions for the
        account and forget the access token. The user removes the app's access where
        :data:`.linking.REMOVE_PERSONAL_ACCESS` and :data:`.linking.REMOVE_WORK_ACCESS`
        say (the consent screen shows them)."""
        for found in await self.client.subscriptions():
            try:
                await self.client.unsubscribe(str(found["id"]))
            except NotFound:
                continue
        if self.token is not None:
            self.token.forget()

    async def close(self) -> None:
        await self.client.close()


def _written(event: GraphEvent) -> Written:
    return Written(event["id"], event.get("@odata.etag") or event.get("changeKey"))


def _schedule_readable(entry: GraphCalendar) -> bool:
    """getSchedule reads a mailbox's default calendar; for the account's own secondary
    calendars the view is the only source (calendars of others are read by owner)."""
    return bool(entry.get("isDefaultCalendar")) or not entry.get("canEdit", False)


def _expiry(ttl_seconds: int) -> str:
    ttl = min(timedelta(seconds=max(ttl_seconds, 60)), MAX_SUBSCRIPTION)
    return (datetime.now(UTC) + ttl).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _parse(text: str) -> datetime:
    moment = parse_local(text)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def open_account(credentials: Mapping[str, str], options: ProviderOptions) -> GraphProvider:
    """Open a Microsoft account (no network yet) from the secrets of
    :class:`AccountSecrets`; where Microsoft is and the limits from the deployment's
    :class:`GraphSettings`."""
    settings = settings_of(options)
    secrets = AccountSecrets.from_mapping(credentials)
    token = TokenSource(settings, secrets)
    client = GraphClient(settings, token, secrets.account_id, user_agent=options.user_agent)
    return GraphProvider(client, secrets, token)
