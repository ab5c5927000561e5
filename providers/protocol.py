"""The one interface every calendar provider implements (ARCHITECTURE.md s5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .model import (
    AccountInfo,
    Calendar,
    Capabilities,
    ChangeSet,
    EventDraft,
    EventPatch,
    FreeBusyBlock,
    Participation,
    PulledChanges,
    PushChannel,
    Resource,
    SyncCursor,
    TimeWindow,
    Written,
)


class CalendarProvider(Protocol):
    """An upstream calendar account, opened with its credentials.

    Methods are async; adapters run blocking client libraries in worker threads. Every
    upstream failure is raised as a :mod:`providers.errors` exception. A method a provider's
    :class:`Capabilities` rule out raises :class:`providers.errors.Forbidden`.
    """

    name: str
    capabilities: Capabilities

    async def verify(self) -> AccountInfo:
        """Check the credentials with a real upstream call and say whose account this is."""
        ...

    async def list_calendars(self) -> list[Calendar]:
        """Every calendar of the account, with read-only flags from the upstream's rights."""
        ...

    async def create_calendar(self, name: str, color: str | None) -> Calendar:
        """Make a new calendar (``capabilities.create_calendar``)."""
        ...

    async def sync(self, calendar_id: str, cursor: SyncCursor | None,
                   window: TimeWindow) -> ChangeSet:
        """Changes since ``cursor`` (all of it when None), instances expanded in ``window``.

        Raises :class:`providers.errors.CursorExpired` when the cursor is no longer
        accepted; the caller then syncs again with None.
        """
        ...

    async def put_event(self, calendar_id: str, draft: EventDraft,
                        resource_id: str | None, etag: str | None) -> Written:
        """Create (``resource_id`` None) or replace a managed event; idempotent per
        ``draft.managed_key``: a retry after a lost answer never makes a duplicate."""
        ...

    async def delete_event(self, calendar_id: str, resource_id: str,
                           etag: str | None) -> None:
        """Delete an event; deleting one that is already gone is not an error."""
        ...

    async def patch_event(self, calendar_id: str, resource_id: str,
                          patch: EventPatch) -> Written:
        """Change only the fields ``patch`` sets on an event Calgate did not create (an
        external event, found by its upstream id); the rest of it is kept as the upstream
        has it. Raises NotFound when the event is gone, InvalidInput for a recurring one."""
        ...

    async def free_busy(self, calendar_ids: Sequence[str],
                        window: TimeWindow) -> list[tuple[str, FreeBusyBlock]]:
        """Busy blocks per calendar inside ``window`` (native where the upstream has it)."""
        ...

    async def set_participation(self, calendar_id: str, resource_id: str,
                                instance_id: str | None, status: Participation) -> None:
        """Answer an invitation as the account owner (``capabilities.participation_status``)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class PushCapable(Protocol):
    """A provider whose upstream pushes change notifications to a webhook
    (``capabilities.native_push``)."""

    async def watch(self, calendar_id: str, address: str, token: str, channel_id: str,
                    ttl_seconds: int) -> PushChannel:
        """Ask the upstream to POST to ``address`` (with ``token``) when the calendar's
        events change, for about ``ttl_seconds`` (the upstream may shorten it)."""
        ...

    async def stop_watch(self, channel: PushChannel) -> None:
        """Stop a channel; one that is already gone or expired is not an error."""
        ...


@runtime_checkable
class RenewablePush(Protocol):
    """A push provider whose channels can be extended in place (a Graph subscription is;
    a Google watch channel is not, and is replaced instead)."""

    async def renew_watch(self, channel: PushChannel, ttl_seconds: int) -> PushChannel:
        """The same channel, living about ``ttl_seconds`` from now (the upstream may shorten
        it); a ProviderError (for instance NotFound: the upstream dropped it) means it must
        be replaced."""
        ...


@runtime_checkable
class PulledPush(Protocol):
    """A push provider whose upstream queues a channel's change events for Calgate to read
    (an EWS pull subscription) instead of POSTing them: ``watch`` opens the queue (its
    address and token are unused), the gateway reads it every few seconds."""

    async def pull_changes(self, channel: PushChannel) -> PulledChanges:
        """Read the channel's queue. NotFound: the upstream dropped it (it must be replaced,
        and the calendar synced, since changes may have been missed)."""
        ...


@runtime_checkable
class Revocable(Protocol):
    """A provider whose upstream can revoke the grant Calgate holds."""

    async def revoke_upstream(self) -> None:
        """Revoke the stored upstream grant; one that is already invalid is fine."""
        ...


@runtime_checkable
class RoomDirectory(Protocol):
    """A provider whose upstream keeps a directory of the organisation's rooms
    (``capabilities.resources``): Google Workspace's calendar resources, Microsoft 365's
    places."""

    async def list_resources(self) -> list[Resource]:
        """Every room the account may see, all pages walked, in the upstream's order.
        Forbidden when the upstream refuses (not an administrator, no admin consent)."""
        ...
