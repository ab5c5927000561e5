"""Application calendars (Cronofy's ``POST /v1/application_calendars``): a calendar owned by
a client app and kept by Calgate itself, with no upstream behind it.

Calgate's mirror is the store. A write goes the way every write goes (outbox, then
``put_event``, then the mirror, in ``gateway/sync/outbox.py``); here ``put_event`` has nobody
to tell, so it only names the resource, and what the outbox writes into the mirror is the
event. ``sync`` reports no changes and never a full listing, so nothing in the mirror is
ever tombstoned by a sync; erasing the account erases the events with its other rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from ..errors import Forbidden, InvalidInput, NotFound
from ..model import (
    AccountInfo,
    Calendar,
    Capabilities,
    ChangeSet,
    EventDraft,
    FreeBusyBlock,
    Participation,
    SyncCursor,
    TimeWindow,
    Written,
)
from ..registry import ProviderOptions

CALENDAR_ID = "application"  # the one calendar's upstream id
CALENDAR_NAME = "Application calendar"


class ApplicationCalendarProvider:
    """A :class:`providers.protocol.CalendarProvider` whose events live in Calgate's mirror."""

    name = "cronofy"
    capabilities = Capabilities(writable=True, incremental_sync=True, invitations=False)

    def __init__(self, application_calendar_id: str) -> None:
        self.application_calendar_id = application_calendar_id

    async def verify(self) -> AccountInfo:
        return AccountInfo(profile_name=self.application_calendar_id,
                           upstream_id=self.application_calendar_id)

    async def list_calendars(self) -> list[Calendar]:
        return [Calendar(CALENDAR_ID, CALENDAR_NAME, primary=True, tzid="Etc/UTC")]

    async def create_calendar(self, name: str, color: str | None) -> Calendar:
        raise Forbidden("an application calendar has one calendar")

    async def sync(self, calendar_id: str, cursor: SyncCursor | None,
                   window: TimeWindow) -> ChangeSet:
        self._check(calendar_id)
        # Nothing changes here but through writes, which reach the mirror themselves.
        return ChangeSet(cursor=SyncCursor("kept"), full=False)

    async def put_event(self, calendar_id: str, draft: EventDraft,
                        resource_id: str | None, etag: str | None) -> Written:
        self._check(calendar_id)
        if draft.attendees:  # the API refuses these first; a stored write is refused here
            raise InvalidInput("an application calendar cannot invite attendees")
        # One resource per managed key: a retried write lands on the same mirror row.
        digest = hashlib.sha256(draft.managed_key.encode()).hexdigest()[:32]
        return Written(resource_id or f"apc-{digest}", None)

    async def delete_event(self, calendar_id: str, resource_id: str,
                           etag: str | None) -> None:
        self._check(calendar_id)  # the outbox tombstones the mirror's rows

    async def free_busy(self, calendar_ids: Sequence[str],
                        window: TimeWindow) -> list[tuple[str, FreeBusyBlock]]:
        # Free/busy is read from the mirror (services/reads.py), which holds every event.
        raise Forbidden("free/busy of an application calendar is read from Calgate's store")

    async def set_participation(self, calendar_id: str, resource_id: str,
                                instance_id: str | None, status: Participation) -> None:
        raise Forbidden("an application calendar has no invitations to answer")

    async def close(self) -> None:
        return None

    @staticmethod
    def _check(calendar_id: str) -> None:
        if calendar_id != CALENDAR_ID:
            raise NotFound(f"no calendar {calendar_id}")


def open_account(credentials: Mapping[str, str],
                 options: ProviderOptions) -> ApplicationCalendarProvider:
    return ApplicationCalendarProvider(credentials.get("application_calendar_id", ""))


__all__ = ["ApplicationCalendarProvider", "open_account"]
