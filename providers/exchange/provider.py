"""EwsProvider: the CalendarProvider over one Exchange mailbox (exchangelib in threads)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from exchangelib import Account, CalendarItem, EWSDateTime
from exchangelib.folders import Calendar as CalendarFolder
from exchangelib.folders import Root
from exchangelib.items import (
    ALL_OCCURRENCES,
    SEND_AND_SAVE_COPY,
    SEND_TO_ALL_AND_SAVE_COPY,
    SEND_TO_NONE,
)

from ..errors import Conflict, Forbidden, InvalidInput
from ..model import (
    AccountInfo,
    Calendar,
    Capabilities,
    ChangeSet,
    Event,
    EventDraft,
    EventPatch,
    FreeBusyBlock,
    FreeBusyStatus,
    Participation,
    PulledChanges,
    PushChannel,
    SyncCursor,
    TimeWindow,
    Written,
)
from ..registry import ProviderOptions
from . import push
from .client import Connection, EwsClient
from .config import settings_of
from .mapping import READ_FIELDS, draft_fields, in_window, patch_fields, to_event, utc

CONFLICT_RETRIES = 3  # a ChangeKey conflict: read the item again and re-apply
PAGE = 512  # SyncFolderItems' MaxChangesReturned ceiling
_BUSY: dict[str, FreeBusyStatus] = {"Busy": "busy", "OOF": "busy", "Tentative": "tentative",
                                     "Free": "free", "WorkingElsewhere": "free"}


class EwsProvider:
    """An Exchange Server mailbox."""

    name = "exchange"
    capabilities = Capabilities(writable=True, free_busy=True, incremental_sync=True,
                                participation_status=True, native_push=True)

    def __init__(self, client: EwsClient) -> None:
        self.client = client

    async def verify(self) -> AccountInfo:
        folder = await self.client.run(lambda account: account.calendar)
        del folder
        email = self.client.connection.email
        return AccountInfo(profile_name=email, upstream_id=email.lower())

    async def list_calendars(self) -> list[Calendar]:
        return await self.client.run(_calendars)

    async def create_calendar(self, name: str, color: str | None) -> Calendar:
        raise Forbidden("creating calendars is not offered for Exchange")

    async def sync(self, calendar_id: str, cursor: SyncCursor | None,
                   window: TimeWindow) -> ChangeSet:
        return await self.client.run(lambda account: _sync(account, calendar_id, cursor,
                                                           window))

    async def put_event(self, calendar_id: str, draft: EventDraft,
                        resource_id: str | None, etag: str | None) -> Written:
        return await self.client.run(lambda account: _put(account, calendar_id, draft,
                                                          resource_id))

    async def delete_event(self, calendar_id: str, resource_id: str,
                           etag: str | None) -> None:
        await self.client.run(lambda account: _delete(account, resource_id))

    async def patch_event(self, calendar_id: str, resource_id: str,
                          patch: EventPatch) -> Written:
        return await self.client.run(lambda account: _patch(account, resource_id, patch))

    async def free_busy(self, calendar_ids: Sequence[str],
                        window: TimeWindow) -> list[tuple[str, FreeBusyBlock]]:
        return await self.client.run(lambda account: _free_busy(account, calendar_ids,
                                                                window))

    async def set_participation(self, calendar_id: str, resource_id: str,
                                instance_id: str | None, status: Participation) -> None:
        """AcceptItem / TentativelyAcceptItem / DeclineItem on the meeting (or the one
        occurrence), the response sent to the organizer with a copy in Sent Items."""
        await self.client.run(lambda account: _answer(account, instance_id or resource_id,
                                                      status))

    async def watch(self, calendar_id: str, address: str, token: str, channel_id: str,
                    ttl_seconds: int) -> PushChannel:
        """A pull subscription on the calendar (:mod:`.push`; nothing is POSTed, so the
        address and token are unused). It lives while it is read; ``ttl_seconds`` only
        says when the gateway replaces it with a fresh one."""
        resource = await self.client.run(
            lambda account: push.subscribe(_folder(account, calendar_id)))
        return PushChannel(channel_id, resource, datetime.now(UTC) + timedelta(
            seconds=ttl_seconds), calendar_id)

    async def stop_watch(self, channel: PushChannel) -> None:
        await self.client.run(lambda account: push.unsubscribe(account, channel.resource_id))

    async def pull_changes(self, channel: PushChannel) -> PulledChanges:
        changed, resource = await self.client.run(
            lambda account: push.read_events(account, channel.resource_id))
        return PulledChanges(changed, replace(channel, resource_id=resource))

    async def close(self) -> None:
        self.client.close()


def open_account(credentials: Mapping[str, str], options: ProviderOptions) -> EwsProvider:
    """Open a mailbox (no network yet): ``email``, ``password``, optional ``ews_url``
    (autodiscover when empty), ``login`` (DOMAIN\\user) and ``auth`` (ntlm, basic)."""
    settings = settings_of(options)
    auth = credentials.get("auth", "ntlm")
    if auth not in ("ntlm", "basic"):
        raise InvalidInput(f"unknown Exchange auth {auth!r}")
    connection = Connection(
        email=credentials.get("email", ""), password=credentials.get("password", ""),
        ews_url=credentials.get("ews_url", ""), login=credentials.get("login", ""),
        auth=auth, ca_bundle=settings.ca_bundle, timeout=settings.timeout)
    return EwsProvider(EwsClient(connection, options.outbound))


# -- the blocking halves, run in a worker thread ------------------------------------------


def _calendars(account: Account) -> list[Calendar]:
    default = account.calendar
    found = [default, *(f for f in default.walk() if isinstance(f, CalendarFolder))]
    return [Calendar(calendar_id=f.id, name=f.name or "Calendar",
                     readonly=not _writable(f), primary=f.id == default.id)
            for f in found]


def _writable(folder: Any) -> bool:
    rights = folder.effective_rights
    return bool(rights is None or rights.create_contents)


def _folder(account: Account, calendar_id: str) -> CalendarFolder:
    # Named by its id alone: ``account.calendar`` (or ``account.root``) costs a GetFolder
    # each, on every sync and write, since the account is opened per job.
    return CalendarFolder(root=Root(account=account), id=calendar_id)


def _sync(account: Account, calendar_id: str, cursor: SyncCursor | None,
          window: TimeWindow) -> ChangeSet:
    folder = _folder(account, calendar_id)
    changed: dict[str, list[Event]] = {}
    deleted: list[str] = []
    changes = folder.sync_items(sync_state=cursor.value if cursor else None,
                                only_fields=(*READ_FIELDS, "uid"), max_changes_returned=PAGE)
    masters: dict[str, str] = {}  # the series' UID -> its master's id
    for kind, item in changes:
        if kind == "delete":
            deleted.append(item.id)
            changed.pop(item.id, None)
            masters = {uid: i for uid, i in masters.items() if i != item.id}
        elif kind in ("create", "update") and item.type == "RecurringMaster":
            masters[item.uid] = item.id
            changed[item.id] = []
        elif kind in ("create", "update"):
            event = to_event(item)
            changed[event.resource_id] = [event] if in_window(event, window) else []
    if masters:  # a series changed: its occurrences and exceptions in the window, as EWS
        # expands them (CalendarView), so moved and cancelled occurrences are right
        for occurrence in _occurrences(account, folder, window, set(masters)):
            master_id = masters[occurrence.uid]
            changed[master_id].append(replace(to_event(occurrence), resource_id=master_id))
    state = folder.item_sync_state
    return ChangeSet(changed=changed, deleted=tuple(deleted),
                     cursor=SyncCursor(state) if state else None, full=cursor is None)


def _view(folder: CalendarFolder, window: TimeWindow, *fields: str) -> Any:
    """FindItem with a CalendarView over the window: singles, occurrences and exceptions."""
    return folder.view(start=EWSDateTime.from_datetime(window.start),
                       end=EWSDateTime.from_datetime(window.end)).only(*fields)


def _occurrences(account: Account, folder: CalendarFolder, window: TimeWindow,
                 uids: set[str]) -> list[Any]:
    """The occurrences and exceptions of the series ``uids`` in the window. The view asks
    for ids and item types only, which FindItem returns itself (exchangelib reads text
    fields, the UID among them, with GetItem): reading every item in the window in full
    would cost a GetItem per hundred singles too. Only occurrences and exceptions are read,
    in batches; those of other series are then left out by their UID."""
    from exchangelib.errors import ErrorCalendarOccurrenceIsDeletedFromRecurrence as Gone
    from exchangelib.errors import ErrorItemNotFound

    wanted = [(o.id, o.changekey) for o in _view(folder, window, "type")
              if o.type in ("Occurrence", "Exception")]
    found = []
    for item in account.fetch(ids=wanted, folder=folder, only_fields=(*READ_FIELDS, "uid")
                              ) if wanted else ():
        if isinstance(item, (ErrorItemNotFound, Gone)):
            continue  # deleted since the view was read: the next sync says so
        if isinstance(item, Exception):
            raise item
        if item.uid in uids:
            found.append(item)
    return found


def _find_managed(folder: CalendarFolder, key: str) -> Any | None:
    # Read to the end: an abandoned query leaves its streamed response (and socket) open.
    found = list(folder.filter(calgate_key=key).only(*READ_FIELDS))
    return found[0] if found else None


def _get(account: Account, resource_id: str) -> Any:
    (item,) = list(account.fetch(ids=[(resource_id, None)], only_fields=READ_FIELDS))
    if isinstance(item, Exception):
        raise item
    return item


def _put(account: Account, calendar_id: str, draft: EventDraft,
         resource_id: str | None) -> Written:
    folder = _folder(account, calendar_id)
    fields = draft_fields(draft)
    invite = SEND_TO_ALL_AND_SAVE_COPY if draft.attendees else SEND_TO_NONE
    existing = (_find_managed(folder, draft.managed_key) if resource_id is None
                else _get_or_none(account, resource_id))
    if existing is None:
        item = CalendarItem(account=account, folder=folder, **fields)
        item.save(send_meeting_invitations=invite)
        return Written(item.id, item.changekey)
    return _update(account, existing, fields, invite)


def _get_or_none(account: Account, resource_id: str) -> Any | None:
    from exchangelib.errors import ErrorItemNotFound

    try:
        return _get(account, resource_id)
    except ErrorItemNotFound:
        return None


def _update(account: Account, item: Any, fields: dict[str, Any], invite: str) -> Written:
    from exchangelib.errors import ErrorIrresolvableConflict

    for attempt in range(CONFLICT_RETRIES):
        for name, value in fields.items():
            setattr(item, name, value)
        try:
            item.save(update_fields=list(fields), send_meeting_invitations=invite)
            return Written(item.id, item.changekey)
        except ErrorIrresolvableConflict:
            if attempt == CONFLICT_RETRIES - 1:
                raise Conflict("the item kept changing upstream") from None
            item = _get(account, item.id)  # a fresh ChangeKey; apply ours again
    raise AssertionError("unreachable")


def _delete(account: Account, resource_id: str) -> None:
    from exchangelib.errors import ErrorItemNotFound

    item = CalendarItem(account=account, id=resource_id, changekey=None)
    try:
        item.delete(send_meeting_cancellations=SEND_TO_NONE,
                    affected_task_occurrences=ALL_OCCURRENCES)
    except ErrorItemNotFound:
        return


def _patch(account: Account, resource_id: str, patch: EventPatch) -> Written:
    item = _get(account, resource_id)
    if item.type not in (None, "Single"):
        raise InvalidInput("a recurring Exchange event cannot be patched here")
    fields = patch_fields(patch)
    if not fields:
        return Written(item.id, item.changekey)
    return _update(account, item, fields, SEND_TO_NONE)


_ANSWERS = {"accepted": "accept", "tentative": "tentatively_accept", "declined": "decline"}


def _answer(account: Account, item_id: str, status: Participation) -> None:
    method = _ANSWERS.get(status)
    if method is None:
        raise InvalidInput(f"an invitation cannot be answered {status!r}")
    item = _get(account, item_id)  # its current ChangeKey: the answer names it
    getattr(item, method)(message_disposition=SEND_AND_SAVE_COPY)


def _free_busy(account: Account, calendar_ids: Sequence[str],
               window: TimeWindow) -> list[tuple[str, FreeBusyBlock]]:
    start = EWSDateTime.from_datetime(window.start)
    end = EWSDateTime.from_datetime(window.end)
    default_id = account.calendar.id
    blocks: list[tuple[str, FreeBusyBlock]] = []
    for calendar_id in calendar_ids:
        if calendar_id == default_id:  # the mailbox's own free/busy: GetUserAvailability
            views = account.protocol.get_free_busy_info(
                accounts=[(account, "Required", False)], start=start, end=end)
            for view in views:
                if isinstance(view, Exception):
                    raise view
                for event in view.calendar_events or ():
                    status = _BUSY.get(event.busy_type or "", "busy")
                    if status != "free":
                        blocks.append((calendar_id, FreeBusyBlock(
                            utc(event.start), utc(event.end), status)))
            continue
        folder = _folder(account, calendar_id)  # a sub-calendar: its items in the window
        for item in folder.view(start=start, end=end).only(*READ_FIELDS):
            event = to_event(item)
            if event.transparency != "transparent" and event.status != "cancelled":
                blocks.append((calendar_id, FreeBusyBlock(
                    event.start, event.end, "tentative" if event.status == "tentative"
                    else "busy")))
    return blocks

