"""IcsFeedProvider: one read-only calendar per feed URL (ARCHITECTURE.md s5)."""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import anyio.to_thread
import httpx

from ..errors import Forbidden, InvalidInput, NotFound
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
    SyncCursor,
    TimeWindow,
    Written,
)
from ..registry import ProviderOptions
from .client import FeedClient, FeedResponse, Validators, normalise_url
from .client import public_url as strip_userinfo
from .cursor import FeedCursor
from .errors import READ_ONLY, feed_errors
from .expansion import read_feed, read_info, validate
from .mapping import FeedInfo, busy_blocks, calendar_id_for, content_digest
from .settings import IcsSettings

# The sync engine lists calendars and then syncs, with a fresh provider each run; a body
# fetched that recently is reused instead of fetching the feed twice within seconds.
REUSE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The last body fetched outside sync, so verify/list/free-busy can GET conditionally."""

    validators: Validators
    body: bytes
    info: FeedInfo
    fetched_at: float  # time.monotonic()
    validated: bool = False  # parsed in full, not just its calendar properties


class IcsFeedProvider:
    """A :class:`providers.protocol.CalendarProvider` over one iCalendar feed URL.

    There is no incremental protocol: ``sync`` returns an empty ChangeSet when the feed is
    unchanged (304, or the same content digest) and otherwise a full listing.
    """

    name = "ics"
    capabilities = Capabilities(writable=False, free_busy=False, incremental_sync=False,
                                native_push=False, server_side_expansion=False)

    def __init__(self, url: str, options: ProviderOptions, *, display_name: str | None = None,
                 verify: ssl.SSLContext | bool = True) -> None:
        """``verify`` is a seam for tests (a private CA); the registry never sets it. The
        outbound policy (allowed networks, resolver) comes with ``options``."""
        self.url = normalise_url(url)
        self.public_url = strip_userinfo(self.url)
        self.display_name = (display_name or "").strip() or None
        limits = options.settings_for("ics", IcsSettings)
        self.max_instances = limits.max_instances
        self.client = FeedClient(
            self.url, timeout=options.timeout, user_agent=options.user_agent,
            max_bytes=limits.max_bytes,
            policy=options.outbound, verify=verify)
        self._snapshot: _Snapshot | None = None

    @property
    def calendar_id(self) -> str:
        # Without user:password, so rotating a feed password keeps the calendar's identity.
        return calendar_id_for(self.public_url)

    def _calendar(self, info: FeedInfo) -> Calendar:
        host = httpx.URL(self.url).host
        # The user's own name for a subscription wins over the feed's X-WR-CALNAME.
        return Calendar(calendar_id=self.calendar_id,
                        name=self.display_name or info.name or host,
                        readonly=True, primary=True, tzid=info.tzid)

    def _check(self, calendar_id: str) -> None:
        if calendar_id != self.calendar_id:
            raise NotFound(f"no calendar {calendar_id} in this feed")

    async def _fetch(self, validators: Validators | None) -> FeedResponse:
        with feed_errors():
            return await self.client.fetch(validators)

    async def _latest(self, check: bool = False) -> _Snapshot:
        """The feed now, re-using the last body when the server answers 304. ``check``
        parses all of it (verify); otherwise only the calendar's own properties are read."""
        known = self._snapshot
        response = await self._fetch(known.validators if known else None)
        body = known.body if response.not_modified and known else response.body
        if known is not None and body is known.body and (known.validated or not check):
            info = known.info
        else:
            info = await anyio.to_thread.run_sync(validate if check else read_info, body)
        self._snapshot = _Snapshot(response.validators, body, info, time.monotonic(),
                                   validated=check or bool(known and known.validated
                                                           and body is known.body))
        return self._snapshot

    async def _fetch_for_sync(self, validators: Validators | None) -> FeedResponse:
        known = self._snapshot
        if known is not None and time.monotonic() - known.fetched_at < REUSE_SECONDS:
            return FeedResponse(False, known.body, known.validators, "")
        return await self._fetch(validators)

    async def _expand(self, body: bytes, window: TimeWindow) -> dict[str, list[Event]]:
        job = functools.partial(read_feed, body, window, self.max_instances)
        _, resources = await anyio.to_thread.run_sync(job)
        return resources

    async def verify(self) -> AccountInfo:
        info = (await self._latest(check=True)).info
        # Feed URLs often carry a secret token in the path: the profile name shows the host only.
        name = self.display_name or info.name or httpx.URL(self.public_url).host
        return AccountInfo(profile_name=name, upstream_id=self.public_url)

    async def list_calendars(self) -> list[Calendar]:
        return [self._calendar((await self._latest()).info)]

    async def create_calendar(self, name: str, color: str | None) -> Calendar:
        raise Forbidden(READ_ONLY)

    async def sync(self, calendar_id: str, cursor: SyncCursor | None,
                   window: TimeWindow) -> ChangeSet:
        self._check(calendar_id)
        previous = FeedCursor.decode(cursor) if cursor is not None else None
        if previous is not None and not previous.covers(window):
            previous = None  # new instances may have come into view: list everything
        response = await self._fetch_for_sync(previous.validators if previous else None)
        if response.not_modified and previous is not None:
            return ChangeSet(cursor=cursor)
        digest = await anyio.to_thread.run_sync(content_digest, response.body)
        if previous is not None and digest == previous.digest:
            kept = FeedCursor(response.validators, digest, previous.window)
            return ChangeSet(cursor=kept.encode())
        resources = await self._expand(response.body, window)
        return ChangeSet(changed=resources, full=True,
                         cursor=FeedCursor(response.validators, digest, window).encode())

    async def put_event(self, calendar_id: str, draft: EventDraft,
                        resource_id: str | None, etag: str | None) -> Written:
        raise Forbidden(READ_ONLY)

    async def delete_event(self, calendar_id: str, resource_id: str,
                           etag: str | None) -> None:
        raise Forbidden(READ_ONLY)

    async def patch_event(self, calendar_id: str, resource_id: str,
                          patch: EventPatch) -> Written:
        raise Forbidden(READ_ONLY)

    async def free_busy(self, calendar_ids: Sequence[str],
                        window: TimeWindow) -> list[tuple[str, FreeBusyBlock]]:
        for calendar_id in calendar_ids:
            self._check(calendar_id)
        if not calendar_ids:
            return []
        resources = await self._expand((await self._latest()).body, window)
        blocks = busy_blocks(e for events in resources.values() for e in events)
        return [(calendar_id, block) for calendar_id in dict.fromkeys(calendar_ids)
                for block in blocks]

    async def set_participation(self, calendar_id: str, resource_id: str,
                                instance_id: str | None, status: Participation) -> None:
        raise Forbidden(READ_ONLY)

    async def close(self) -> None:
        return None  # no connection outlives a fetch (see FeedClient)


def open_account(credentials: Mapping[str, str], options: ProviderOptions) -> IcsFeedProvider:
    """Open a feed from credentials ``{"url": "https://…" | "webcal://…", "name"?: "…"}``."""
    url = credentials.get("url", "").strip()
    if not url:
        raise InvalidInput("an ICS feed needs a url")
    try:
        return IcsFeedProvider(url, options, display_name=credentials.get("name"))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


__all__ = ["IcsFeedProvider", "open_account"]
