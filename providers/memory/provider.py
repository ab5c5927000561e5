"""The in-memory reference provider: the contract's executable specification, for tests.

State lives in a process-wide :data:`WORLD`, so a test can play the user editing their own
calendar upstream and watch the change arrive through sync.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from threading import Lock

from ..errors import Conflict, CursorExpired, Forbidden, InvalidInput, NotFound, Unauthorized
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
    SyncCursor,
    TimeWindow,
    When,
    Written,
)
from ..registry import ProviderOptions


@dataclass
class MemoryCalendar:
    calendar: Calendar
    resources: dict[str, list[Event]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)  # resource -> version changed at
    deleted: dict[str, int] = field(default_factory=dict)  # resource -> version deleted at


@dataclass
class MemoryAccount:
    name: str
    password: str
    calendars: dict[str, MemoryCalendar] = field(default_factory=dict)


class MemoryWorld:
    """Every in-memory upstream account; thread-safe."""

    def __init__(self) -> None:
        self.accounts: dict[str, MemoryAccount] = {}
        self.lock = Lock()
        self._clock = itertools.count(1)
        self.down = False  # set True to simulate an outage

    def tick(self) -> int:
        return next(self._clock)

    def add_account(self, name: str, password: str, calendars: Sequence[Calendar] = ()
                    ) -> MemoryAccount:
        with self.lock:
            account = MemoryAccount(name, password)
            for cal in calendars or (Calendar(f"{name}/default", "Calendar", primary=True),):
                account.calendars[cal.calendar_id] = MemoryCalendar(cal)
            self.accounts[name] = account
            return account

    def put(self, account: str, calendar_id: str, resource_id: str,
            instances: list[Event]) -> None:
        """Write a resource as the user would, straight into the upstream."""
        with self.lock:
            cal = self.accounts[account].calendars[calendar_id]
            cal.resources[resource_id] = instances
            cal.versions[resource_id] = self.tick()
            cal.deleted.pop(resource_id, None)

    def remove(self, account: str, calendar_id: str, resource_id: str) -> None:
        with self.lock:
            cal = self.accounts[account].calendars[calendar_id]
            cal.resources.pop(resource_id, None)
            cal.versions.pop(resource_id, None)
            cal.deleted[resource_id] = self.tick()


WORLD = MemoryWorld()


def _overlaps(event: Event, window: TimeWindow) -> bool:
    return _utc(event.end) > window.start and _utc(event.start) < window.end


def _utc(value: When) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


class MemoryProvider:
    """A :class:`providers.protocol.CalendarProvider` over :data:`WORLD`."""

    name = "memory"
    capabilities = Capabilities(writable=True, free_busy=True, incremental_sync=True,
                                create_calendar=True, participation_status=True)

    def __init__(self, account: str, password: str, world: MemoryWorld = WORLD) -> None:
        self.world = world
        self.account_name = account
        self.password = password

    def _account(self) -> MemoryAccount:
        if self.world.down:
            from ..errors import Unavailable

            raise Unavailable("the in-memory upstream is down")
        account = self.world.accounts.get(self.account_name)
        if account is None or account.password != self.password:
            raise Unauthorized("the in-memory upstream refused these credentials")
        return account

    def _calendar(self, calendar_id: str) -> MemoryCalendar:
        cal = self._account().calendars.get(calendar_id)
        if cal is None:
            raise NotFound(f"no calendar {calendar_id}")
        return cal

    async def verify(self) -> AccountInfo:
        account = self._account()
        return AccountInfo(profile_name=account.name, upstream_id=account.name.lower())

    async def list_calendars(self) -> list[Calendar]:
        return [c.calendar for c in self._account().calendars.values()]

    async def create_calendar(self, name: str, color: str | None) -> Calendar:
        account = self._account()
        with self.world.lock:
            if any(c.calendar.name == name for c in account.calendars.values()):
                raise Conflict(f"a calendar named {name!r} exists")
            cal = Calendar(f"{account.name}/{len(account.calendars) + 1}", name, color=color)
            account.calendars[cal.calendar_id] = MemoryCalendar(cal)
        return cal

    async def sync(self, calendar_id: str, cursor: SyncCursor | None,
                   window: TimeWindow) -> ChangeSet:
        cal = self._calendar(calendar_id)
        if cursor is not None and not cursor.value.isdigit():
            raise CursorExpired("the in-memory upstream does not know this cursor")
        with self.world.lock:
            since = int(cursor.value) if cursor else 0
            now = self.world.tick()
            changed = {rid: [e for e in events if _overlaps(e, window)]
                       for rid, events in cal.resources.items() if cal.versions[rid] > since}
            deleted = tuple(rid for rid, at in cal.deleted.items() if at > since)
        return ChangeSet(changed=changed, deleted=() if cursor is None else deleted,
                         cursor=SyncCursor(str(now)), full=cursor is None)

    async def put_event(self, calendar_id: str, draft: EventDraft,
                        resource_id: str | None, etag: str | None) -> Written:
        cal = self._calendar(calendar_id)
        if cal.calendar.readonly:
            raise Forbidden("read-only calendar")
        # Idempotent per managed key: a retry finds the event it already wrote.
        existing = next((rid for rid, evs in cal.resources.items()
                         if evs and evs[0].managed_key == draft.managed_key), None)
        rid = resource_id or existing or f"mem-{self.world.tick()}"
        event = draft.as_event(rid, str(self.world.tick()))
        self.world.put(self.account_name, calendar_id, rid, [event])
        return Written(rid, event.etag)

    async def patch_event(self, calendar_id: str, resource_id: str,
                          patch: EventPatch) -> Written:
        cal = self._calendar(calendar_id)
        if cal.calendar.readonly:
            raise Forbidden("read-only calendar")
        found = cal.resources.get(resource_id)
        if not found:
            raise NotFound(f"no event {resource_id}")
        if len(found) != 1 or found[0].recurring:
            raise InvalidInput("a recurring event is not edited here")
        changes: dict[str, object] = {k: getattr(patch, k) for k in
                                      ("summary", "description", "location", "transparency")
                                      if getattr(patch, k) is not None}
        times = patch.times
        if times is not None:
            changes |= {"start": times[0], "end": times[1], "start_tzid": patch.start_tzid,
                        "end_tzid": patch.end_tzid}
        event = replace(found[0], etag=str(self.world.tick()), **changes)  # type: ignore[arg-type]
        self.world.put(self.account_name, calendar_id, resource_id, [event])
        return Written(resource_id, event.etag)

    async def delete_event(self, calendar_id: str, resource_id: str, etag: str | None) -> None:
        cal = self._calendar(calendar_id)
        if cal.calendar.readonly:
            raise Forbidden("read-only calendar")
        if resource_id in cal.resources:
            self.world.remove(self.account_name, calendar_id, resource_id)

    async def free_busy(self, calendar_ids: Sequence[str],
                        window: TimeWindow) -> list[tuple[str, FreeBusyBlock]]:
        blocks = []
        for calendar_id in calendar_ids:
            for events in self._calendar(calendar_id).resources.values():
                for e in events:
                    if _overlaps(e, window) and e.transparency != "transparent" \
                            and e.status != "cancelled":
                        status: FreeBusyStatus = ("tentative" if e.status == "tentative"
                                                  else "busy")
                        blocks.append((calendar_id, FreeBusyBlock(e.start, e.end, status)))
        return blocks

    async def set_participation(self, calendar_id: str, resource_id: str,
                                instance_id: str | None, status: Participation) -> None:
        cal = self._calendar(calendar_id)
        events = cal.resources.get(resource_id)
        if events is None:
            raise NotFound(f"no event {resource_id}")
        self.world.put(self.account_name, calendar_id, resource_id, [
            replace(e, participation_status=status)
            if instance_id in (None, e.instance_id) else e for e in events])

    async def close(self) -> None:
        return None


def open_account(credentials: Mapping[str, str], options: ProviderOptions) -> MemoryProvider:
    return MemoryProvider(credentials.get("account", ""), credentials.get("password", ""))


__all__ = ["WORLD", "MemoryProvider", "MemoryWorld", "open_account"]

