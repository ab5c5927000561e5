"""Provider push channels (an upstream's watch or subscription): created, renewed, checked,
stopped.

For every live calendar of a connected profile whose provider pushes, the worker keeps one
channel whose address is this server's ``/webhooks/{provider}``; each carries a random
verification token, stored only as its digest. A push names the channel and the token:
an unknown channel or a wrong token is refused, a right one makes the profile due for sync
at once (``sync_requested_at`` keeps a sync already running from pushing it back). A
channel is renewed before it ends (or when the provider says it must be): extended in
place where the provider can (:class:`RenewablePush`), replaced by a new one otherwise or
when the extension is refused; it is stopped when its calendar or profile goes. Where a
channel cannot be created (no public URL in development, or the provider refuses),
polling carries on and creation is retried later.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import Engine, delete, insert, or_, select, update

from providers.errors import ProviderError
from providers.model import PushChannel
from providers.protocol import CalendarProvider, PushCapable, RenewablePush, Revocable
from providers.registry import PushKind, push_providers

from ..domain.ids import new_id
from ..domain.opener import ProfileOpener
from ..observe import metrics
from ..persistence.cursors import reset_cursors
from ..persistence.tables import calendars, profiles, push_channels

log = logging.getLogger("calgate.push")
RETRY_AFTER_FAILURE = 3600.0  # seconds before trying again to create a refused channel


@dataclass(frozen=True, slots=True)
class PushSettings:
    enabled: bool  # channels POSTing to this server's webhooks
    base_url: str  # this server's public origin
    ttl: int = 7 * 86400
    pull: bool = False  # channels Calgate reads itself (no public URL needed)

    @property
    def kinds(self) -> tuple[PushKind, ...]:
        found: list[PushKind] = []
        if self.enabled:
            found.append("webhook")
        if self.pull:
            found.append("pull")
        return tuple(found)

    @property
    def renew_margin(self) -> timedelta:
        """Renew a day before the end, or at half its life when it is shorter than 2 days."""
        return timedelta(seconds=min(86400, self.ttl // 2))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class PushService:
    def __init__(self, engine: Engine, opener: ProfileOpener, settings: PushSettings) -> None:
        self.engine = engine
        self.opener = opener
        self.settings = settings
        self._failed: dict[str, float] = {}  # profile id -> monotonic time of the failure
        self._busy: set[str] = set()  # profiles being maintained by this process

    # -- the worker's side --------------------------------------------------------------
    def due(self, now: datetime | None = None) -> list[str]:
        """Connected push profiles with a live calendar lacking a channel, a channel about
        to end, or a channel for a calendar that is gone."""
        if not self.settings.kinds:
            return []
        now = now or datetime.now(UTC)
        soon = now + self.settings.renew_margin
        live = (select(calendars.c.id).where(
            calendars.c.profile_id == profiles.c.id, calendars.c.deleted.is_(False),
            ~select(push_channels.c.id).where(
                push_channels.c.calendar_id == calendars.c.id,
                push_channels.c.expires_at > soon).exists()).exists())
        stale = (select(push_channels.c.id).join(
            calendars, calendars.c.id == push_channels.c.calendar_id).where(
            push_channels.c.profile_id == profiles.c.id, calendars.c.deleted.is_(True))
            .exists())
        query = select(profiles.c.id).where(
            profiles.c.connected.is_(True),
            profiles.c.provider_name.in_(push_providers(*self.settings.kinds)),
            profiles.c.initial_sync_required.is_(False), or_(live, stale))
        with self.engine.connect() as conn:
            found = [str(r) for r in conn.execute(query).scalars()]
        mono = time.monotonic()
        return [p for p in found if p not in self._busy
                and mono - self._failed.get(p, -1e9) > RETRY_AFTER_FAILURE]

    async def maintain(self, profile_id: str) -> int:
        """Create, renew and stop this profile's channels; returns channels created."""
        if profile_id in self._busy:
            return 0
        self._busy.add(profile_id)
        try:
            return await self._maintain(profile_id)
        finally:
            self._busy.discard(profile_id)

    async def _maintain(self, profile_id: str) -> int:
        row, calendar_rows, channel_rows = await to_thread.run_sync(self._state, profile_id)
        if row is None:
            return 0
        provider = await self.opener.open(row.provider_name, row.credential_path)
        try:
            if not isinstance(provider, PushCapable):
                return 0
            return await self._refresh(profile_id, row.provider_name, provider,
                                       calendar_rows, channel_rows)
        finally:
            await provider.close()

    async def _refresh(self, profile_id: str, provider_name: str, provider: PushCapable,
                       calendar_rows: dict[str, str], channel_rows: list[Any]) -> int:
        """Keep the channels still live, extend the ones ending (where the provider can),
        create the missing ones, then stop every other."""
        soon = datetime.now(UTC) + self.settings.renew_margin
        live = [c for c in channel_rows if c.calendar_id in calendar_rows]
        kept = {c.id for c in live if _aware(c.expires_at) > soon}
        for old in live:
            if old.id not in kept and old.calendar_id not in _covered(live, kept) \
                    and await self._renew(provider, old):
                kept.add(old.id)
        created = 0
        for calendar_id, upstream_id in calendar_rows.items():
            if calendar_id in _covered(live, kept):
                continue
            if not await self._create(profile_id, provider_name, provider, calendar_id,
                                      upstream_id):
                self._failed[profile_id] = time.monotonic()
                return created
            created += 1
        for old in channel_rows:  # replaced, or for a calendar that is gone
            if old.id not in kept:
                await self._stop(provider, old)
        self._failed.pop(profile_id, None)
        return created

    async def _renew(self, provider: PushCapable, old: Any) -> bool:
        """Extend a channel in place (a reauthorization, or the end drawing near); False
        when the provider cannot, or refuses (the channel is then replaced)."""
        if not isinstance(provider, RenewablePush):
            return False
        try:
            with metrics.upstream_call(old.provider_name, "renew_watch"):
                channel = await provider.renew_watch(_channel(old), self.settings.ttl)
        except ProviderError as exc:
            log.info("push channel %s not renewed (%s); replacing it", old.id, exc)
            return False
        await to_thread.run_sync(self._extend, old.id, channel.expires_at)
        return True

    async def _create(self, profile_id: str, provider_name: str, provider: PushCapable,
                      calendar_id: str, upstream_id: str) -> bool:
        channel_id, token = new_id("ch_"), secrets.token_urlsafe(32)
        try:
            with metrics.upstream_call(provider_name, "watch"):
                channel = await provider.watch(
                    upstream_id, f"{self.settings.base_url}/webhooks/{provider_name}",
                    token, channel_id, self.settings.ttl)
        except ProviderError as exc:
            log.warning("push channel for %s not created (%s); polling continues",
                        calendar_id, exc)
            return False
        await to_thread.run_sync(self._save, profile_id, calendar_id, provider_name,
                                 channel, token)
        return True

    def _state(self, profile_id: str, connected_only: bool = True
               ) -> tuple[Any, dict[str, str], list[Any]]:
        """(provider name + credential path, live calendar id -> upstream id, channels)."""
        query = select(profiles.c.provider_name, profiles.c.credential_path).where(
            profiles.c.id == profile_id)
        if connected_only:
            query = query.where(profiles.c.connected.is_(True))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
            cals = {r.id: r.upstream_id for r in conn.execute(
                select(calendars.c.id, calendars.c.upstream_id).where(
                    calendars.c.profile_id == profile_id, calendars.c.deleted.is_(False)))}
            chans = list(conn.execute(select(push_channels).where(
                push_channels.c.profile_id == profile_id)).all())
        return row, cals, chans

    def _save(self, profile_id: str, calendar_id: str, provider_name: str,
              channel: PushChannel, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(push_channels).values(
                id=channel.channel_id, profile_id=profile_id, calendar_id=calendar_id,
                provider_name=provider_name, resource_id=channel.resource_id,
                token_hash=digest(token), expires_at=channel.expires_at,
                created_at=datetime.now(UTC), messages=0))

    def _extend(self, channel_id: str, expires_at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(push_channels).where(push_channels.c.id == channel_id)
                         .values(expires_at=expires_at))

    async def _stop(self, provider: CalendarProvider | PushCapable, row: Any) -> None:
        channel = _channel(row)
        if isinstance(provider, PushCapable):
            try:
                with metrics.upstream_call(row.provider_name, "stop_watch"):
                    await provider.stop_watch(channel)
            except ProviderError as exc:  # it ends by itself at its expiry anyway
                log.info("stopping push channel %s: %s", channel.channel_id, exc)
        await to_thread.run_sync(self._forget, channel.channel_id)

    def _forget(self, channel_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(push_channels).where(push_channels.c.id == channel_id))

    # -- the webhook's side -------------------------------------------------------------
    def notify(self, provider_name: str, channel_id: str, token: str, resource_id: str | None,
               state: str) -> bool:
        """A provider's push. False when it is not one of ours (unknown channel, wrong
        token or resource); otherwise the profile is due for sync now (unless it is the
        channel's opening ``sync`` message), after a ``renew`` the channel is renewed and
        after a ``resync`` its calendar is synced in full (:class:`PushNotice`)."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            row = conn.execute(select(push_channels).where(
                push_channels.c.id == channel_id,
                push_channels.c.provider_name == provider_name)).first()
            if row is None or not hmac.compare_digest(row.token_hash, digest(token)):
                return False
            if resource_id is not None and resource_id != row.resource_id:
                return False
            conn.execute(update(push_channels).where(push_channels.c.id == channel_id)
                         .values(messages=push_channels.c.messages + 1))
            if state == "renew":  # renewed by the next maintenance, which `due` now finds
                conn.execute(update(push_channels).where(push_channels.c.id == channel_id)
                             .values(expires_at=now))
            if state == "resync":  # no cursor: the calendar's next sync is a full one
                reset_cursors(conn, calendars.c.id == row.calendar_id)
            if state != "sync":
                conn.execute(update(profiles).where(profiles.c.id == row.profile_id).values(
                    next_sync_at=now, sync_requested_at=now))
        return True

    # -- erasure --------------------------------------------------------------------------
    async def release(self, profile_id: str) -> None:
        """Before a profile is erased: stop its channels and revoke its upstream grant."""
        row, _, channel_rows = await to_thread.run_sync(self._state, profile_id, False)
        if row is None or not row.credential_path or row.provider_name not in push_providers():
            return  # nothing upstream to release (CalDAV, ICS: no grant, no channels)
        try:
            provider = await self.opener.open(row.provider_name,
                                              row.credential_path)
        except Exception as exc:  # the credentials may already be unusable
            log.info("releasing %s upstream: %s", profile_id, exc)
            return
        try:
            for old in channel_rows:
                await self._stop(provider, old)
            if isinstance(provider, Revocable):
                try:
                    with metrics.upstream_call(row.provider_name, "revoke"):
                        await provider.revoke_upstream()
                except ProviderError as exc:
                    log.info("revoking %s upstream: %s", profile_id, exc)
        finally:
            await provider.close()


def _channel(row: Any) -> PushChannel:
    return PushChannel(channel_id=row.id, resource_id=row.resource_id,
                       expires_at=_aware(row.expires_at), calendar_id=row.calendar_id)


def _covered(channel_rows: list[Any], kept: set[str]) -> set[str]:
    """Calendars that keep a channel."""
    return {c.calendar_id for c in channel_rows if c.id in kept}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


__all__ = ["PushService", "PushSettings"]
