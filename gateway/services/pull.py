"""Reading pulled push channels: the queues an upstream keeps for Calgate instead of
POSTing to a webhook (:class:`providers.protocol.PulledPush`).

Channels are created, renewed and stopped by :class:`PushService` like every other; this
reads them. Every ``interval`` seconds, each connected profile with pulled channels is
read (one short upstream request per channel). A change makes the profile due for sync at
once, as a webhook notification does; the channel's new position is stored. A channel the
upstream dropped is forgotten and the profile synced, so the next maintenance makes a new
one and nothing that changed in between is missed; a read refused for the credentials (a
password changed upstream) syncs at once too, so the profile is disconnected and the app
told without waiting for the poll. Polling stays the fallback: a read
that fails only waits for the next interval (or the regular poll).

The last read time is kept per process: with several worker processes a channel may be
read more often than ``interval``, which costs a request but loses nothing.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from anyio import to_thread
from sqlalchemy import Engine, delete, select, update

from providers.errors import NotFound, ProviderError, Unauthorized
from providers.model import PushChannel
from providers.protocol import PulledPush
from providers.registry import push_providers

from ..domain.opener import ProfileOpener
from ..observe import metrics
from ..persistence.tables import profiles, push_channels

log = logging.getLogger("calgate.push")
PULL_INTERVAL = 10.0  # seconds between reads of a profile's channels


class PullService:
    """Reads the pulled channels of connected profiles and asks for syncs."""

    def __init__(self, engine: Engine, opener: ProfileOpener, enabled: bool,
                 interval: float = PULL_INTERVAL) -> None:
        self.engine = engine
        self.opener = opener
        self.enabled = enabled
        self.interval = interval
        self._read: dict[str, float] = {}  # profile id -> monotonic time of the last read

    def due(self) -> list[str]:
        """Connected profiles with pulled channels not read for ``interval`` seconds."""
        names = push_providers("pull")
        if not self.enabled or not names:
            return []
        query = select(push_channels.c.profile_id).distinct().join(
            profiles, profiles.c.id == push_channels.c.profile_id).where(
            profiles.c.connected.is_(True), push_channels.c.provider_name.in_(names))
        with self.engine.connect() as conn:
            found = [str(r) for r in conn.execute(query).scalars()]
        now = time.monotonic()
        return [p for p in found if now - self._read.get(p, -1e9) >= self.interval]

    async def read(self, profile_id: str) -> bool:
        """Read the profile's channels; True when it was made due for sync."""
        self._read[profile_id] = time.monotonic()
        row, channel_rows = await to_thread.run_sync(self._state, profile_id)
        if row is None or not channel_rows:
            return False
        provider = await self.opener.open(row.provider_name, row.credential_path)
        try:
            if not isinstance(provider, PulledPush):
                return False
            wanted = False
            for channel_row in channel_rows:
                wanted = await self._read_one(provider, row.provider_name,
                                              channel_row) or wanted
        finally:
            await provider.close()
        if wanted:
            await to_thread.run_sync(self._sync_now, profile_id)
        return wanted

    async def _read_one(self, provider: PulledPush, provider_name: str, row: Any) -> bool:
        """True when the calendar changed, or its channel is gone (changes may be lost)."""
        channel = PushChannel(row.id, row.resource_id, row.expires_at, row.calendar_id)
        try:
            with metrics.upstream_call(provider_name, "pull_changes"):
                pulled = await provider.pull_changes(channel)
        except NotFound as exc:
            log.info("push channel %s dropped upstream (%s); replacing it", row.id, exc)
            await to_thread.run_sync(self._forget, row.id)
            return True
        except Unauthorized as exc:  # the sync it asks for disconnects the profile (and
            # tells the app) now rather than at the next poll
            log.info("reading push channel %s: %s", row.id, exc)
            return True
        except ProviderError as exc:  # the regular poll (and its error handling) goes on
            log.info("reading push channel %s: %s", row.id, exc)
            return False
        await to_thread.run_sync(self._advance, row.id, pulled.channel.resource_id,
                                 pulled.changed)
        return pulled.changed

    def _state(self, profile_id: str) -> tuple[Any, list[Any]]:
        with self.engine.connect() as conn:
            row = conn.execute(select(profiles.c.provider_name, profiles.c.credential_path)
                               .where(profiles.c.id == profile_id,
                                      profiles.c.connected.is_(True))).first()
            channels = list(conn.execute(select(push_channels).where(
                push_channels.c.profile_id == profile_id)).all())
        return row, channels

    def _advance(self, channel_id: str, resource_id: str, changed: bool) -> None:
        values: dict[str, Any] = {"resource_id": resource_id}
        if changed:
            values["messages"] = push_channels.c.messages + 1
        with self.engine.begin() as conn:
            conn.execute(update(push_channels).where(push_channels.c.id == channel_id)
                         .values(**values))

    def _forget(self, channel_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(push_channels).where(push_channels.c.id == channel_id))

    def _sync_now(self, profile_id: str) -> None:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(update(profiles).where(profiles.c.id == profile_id).values(
                next_sync_at=now, sync_requested_at=now))


__all__ = ["PullService"]
