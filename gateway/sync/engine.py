"""Syncing a profile: its calendars, then each calendar's changes, into the mirror.

One sync of a profile at a time across every worker (a lease in the profiles row). An
expired cursor means a full resync, never an error; an upstream that refuses the
credentials marks the profile disconnected; an unreachable one is retried with backoff.

The upstream calendar list is read on a slower cadence than the calendars' changes
(``calendar_list_interval``): on a profile's first sync, when the last listing is older
than that, after a failed sync, and when a calendar's sync says it is gone (NotFound).
Otherwise an incremental sync goes straight to the calendars the mirror knows, which
for CalDAV means one sync-collection REPORT per calendar, plus a multiget if anything
changed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import Engine, and_, func, insert, or_, select, update

from providers.errors import (
    CursorExpired,
    Forbidden,
    NotFound,
    ProviderError,
    RateLimited,
    Unauthorized,
)
from providers.model import Calendar, ChangeSet, SyncCursor, TimeWindow
from providers.protocol import CalendarProvider
from providers.registry import ProviderOptions

from ..domain.ids import new_id
from ..domain.mirror import Policy, apply_changes
from ..domain.notify import (
    PROFILE_DISCONNECTED,
    PROFILE_INITIAL_SYNC_COMPLETED,
    account_changed,
    profile_event,
)
from ..domain.opener import ProfileOpener
from ..domain.sealing import DataKeys
from ..observe import metrics
from ..persistence.cursors import save_cursor
from ..persistence.generation import bump_generation
from ..persistence.tables import accounts, calendars, profiles
from ..secrets import SecretStore, SecretStoreUnavailable

log = logging.getLogger("calgate.sync")
SECRET_STORE_RETRY = 15.0  # seconds; work that needs a sealed or unreachable Vault waits
LEASE = timedelta(minutes=2)  # renewed every third of it while the sync runs


@dataclass(frozen=True, slots=True)
class SyncSettings:
    days_back: int = 42
    days_ahead: int = 201
    interval: float = 300.0  # seconds between incremental syncs of a profile
    max_backoff: float = 3600.0
    calendar_list_interval: float = 3600.0  # seconds between calendar listings (0: every sync)
    lease: float = LEASE.total_seconds()  # a worker that died mid-sync holds its profile so long

    def window(self, now: datetime) -> TimeWindow:
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return TimeWindow(today - timedelta(days=self.days_back),
                          today + timedelta(days=self.days_ahead))


@dataclass(frozen=True, slots=True)
class Known:
    """A live calendar of the mirror as a sync starts on it: its cursor, and the cursor's
    epoch (a reset meanwhile moves it on, and the sync's own cursor is then not kept)."""

    id: str
    upstream_id: str
    cursor: str | None
    epoch: int


@dataclass(frozen=True, slots=True)
class Outcome:
    profile_id: str
    ran: bool  # False: another worker holds the lease, or nothing is linked
    changed: int = 0
    error: str | None = None


class SyncEngine:
    """Pulls upstream changes into the mirror."""

    def __init__(self, engine: Engine, secrets: SecretStore, keys: DataKeys,
                 settings: SyncSettings | None = None,
                 options: ProviderOptions | None = None) -> None:
        self.engine = engine
        self.secrets = secrets
        self.keys = keys
        self.settings = settings or SyncSettings()
        self.options = options or ProviderOptions()

    @property
    def opener(self) -> ProfileOpener:
        """Opens a profile's account with its credentials (and its upstream app's)."""
        return ProfileOpener(self.secrets, self.options)

    def due_profiles(self, now: datetime | None = None, limit: int = 100) -> list[str]:
        """Profiles whose next sync is due and which no worker is syncing."""
        now = now or datetime.now(UTC)
        query = select(profiles.c.id).where(
            profiles.c.connected.is_(True), profiles.c.next_sync_at <= now,
            or_(profiles.c.sync_lease_until.is_(None), profiles.c.sync_lease_until < now),
        ).order_by(profiles.c.next_sync_at).limit(limit)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query).all()]

    def next_due(self) -> datetime | None:
        """When the next profile falls due for sync (None: none is scheduled)."""
        now = datetime.now(UTC)
        query = select(func.min(profiles.c.next_sync_at)).where(
            profiles.c.connected.is_(True),
            or_(profiles.c.sync_lease_until.is_(None), profiles.c.sync_lease_until < now))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def release(self, profile_id: str) -> None:
        """Give up this worker's lease on the profile (shutting down mid-sync): it is due
        again at once, for another worker."""
        with self.engine.begin() as conn:
            conn.execute(update(profiles).where(profiles.c.id == profile_id).values(
                sync_lease_until=None, next_sync_at=datetime.now(UTC)))

    async def sync_profile(self, profile_id: str) -> Outcome:
        now = datetime.now(UTC)
        if not await to_thread.run_sync(self._lease, profile_id, now):
            return Outcome(profile_id, ran=False)
        # Keep the lease while this sync runs, however long one calendar takes: another
        # worker must not start a second sync of the profile meanwhile.
        heartbeat = asyncio.get_running_loop().create_task(self._keep_lease(profile_id))
        try:
            return await self._sync_leased(profile_id, now)
        finally:
            heartbeat.cancel()

    async def _keep_lease(self, profile_id: str) -> None:
        while True:
            await asyncio.sleep(self.settings.lease / 3)
            await to_thread.run_sync(self._renew, profile_id)

    def _renew(self, profile_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(profiles).where(
                profiles.c.id == profile_id, profiles.c.sync_lease_until.is_not(None),
            ).values(sync_lease_until=datetime.now(UTC) + self._lease_time))

    async def _sync_leased(self, profile_id: str, now: datetime) -> Outcome:
        provider: CalendarProvider | None = None
        try:
            row = await to_thread.run_sync(self._profile, profile_id)
            provider = await self.opener.open(row["provider_name"], row["credential_path"])
            with (metrics.upstream_call(row["provider_name"], "sync"),
                  metrics.timed_sync(row["provider_name"])):
                changed = await self._sync_calendars(provider, row, now)
        except Unauthorized as exc:
            log.warning("profile %s disconnected: %s", profile_id, exc)
            await to_thread.run_sync(self._finish, profile_id, str(exc), None, False, now)
            return Outcome(profile_id, ran=True, error=str(exc))
        except SecretStoreUnavailable as exc:  # a sealed Vault: try again soon
            log.warning("sync of %s waits for the secret store: %s", profile_id, exc)
            await to_thread.run_sync(self._finish, profile_id, f"secret store: {exc}",
                                     SECRET_STORE_RETRY, True, now)
            return Outcome(profile_id, ran=True, error=str(exc))
        except ProviderError as exc:
            log.warning("sync of %s failed: %s", profile_id, exc)
            retry = exc.retry_after if isinstance(exc, RateLimited) else None
            await to_thread.run_sync(self._finish, profile_id, str(exc), retry, True, now)
            return Outcome(profile_id, ran=True, error=str(exc))
        finally:
            if provider is not None:
                await provider.close()
        await to_thread.run_sync(self._finish, profile_id, None, None, True, now)
        return Outcome(profile_id, ran=True, changed=changed)

    async def _sync_calendars(self, provider: CalendarProvider, row: dict[str, Any],
                              now: datetime) -> int:
        listed = self._listing_due(row, now)
        if listed:
            mirror = await self._list_calendars(provider, row["id"], now)
        else:
            mirror = await to_thread.run_sync(self._known_calendars, row["id"])
        policy = Policy.for_scope(row["account_id"], row["scope"].split())
        key = await to_thread.run_sync(self.keys.key, row["account_id"])
        window = self.settings.window(now)
        changed = 0
        done: set[str] = set()
        pending = list(mirror)
        while pending:
            known = pending.pop(0)
            calendar_id = known.id
            try:
                changes = await self._sync_calendar(provider, known.upstream_id, known.cursor,
                                                    window)
            except Forbidden as exc:
                # The grant does not reach this calendar (e.g. a write-only upstream grant
                # and a calendar the user does not own): skip it, sync the rest.
                log.info("calendar %s of %s not readable with this grant: %s", calendar_id,
                         row["id"], exc)
                done.add(calendar_id)
                continue
            except NotFound:
                if listed:
                    raise  # listed just now, yet not found: a real error
                # Gone upstream since the last listing (or moved): list again and go on
                # with what the list says; a calendar no longer there is marked deleted.
                listed = True
                mirror = await self._list_calendars(provider, row["id"], now)
                pending = [m for m in mirror if m.id not in done]
                continue
            done.add(calendar_id)
            changed += await to_thread.run_sync(self._apply, known, changes, policy, key, now,
                                                window)
        return changed

    def _listing_due(self, row: dict[str, Any], now: datetime) -> bool:
        """Whether this sync reads the upstream calendar list first."""
        listed_at: datetime | None = row.get("calendars_listed_at")
        if listed_at is None or row["initial_sync_required"] or row["last_sync_error"]:
            return True
        if listed_at.tzinfo is None:  # SQLite keeps no offset
            listed_at = listed_at.replace(tzinfo=UTC)
        interval = timedelta(seconds=self.settings.calendar_list_interval)
        return not now - interval < listed_at <= now

    async def _list_calendars(self, provider: CalendarProvider, profile_id: str,
                              now: datetime) -> list[Known]:
        upstream = await provider.list_calendars()
        return await to_thread.run_sync(self._save_calendars, profile_id, upstream, now)

    @staticmethod
    async def _sync_calendar(provider: CalendarProvider, upstream_id: str, cursor: str | None,
                             window: TimeWindow) -> ChangeSet:
        try:
            return await provider.sync(upstream_id, SyncCursor(cursor) if cursor else None,
                                       window)
        except CursorExpired:
            return await provider.sync(upstream_id, None, window)

    def _apply(self, known: Known, changes: ChangeSet, policy: Policy, key: bytes | None,
               now: datetime, window: TimeWindow) -> int:
        with self.engine.begin() as conn:
            written = apply_changes(conn, known.id, changes, policy, key, now, window)
            cursor = changes.cursor.value if changes.cursor else None
            if not save_cursor(conn, known.id, known.epoch, cursor, now):
                # Reset while this round ran (the upstream lost changes): the next sync,
                # already due, is a full one.
                log.info("calendar %s was reset during its sync; its cursor is not kept",
                         known.id)
        return written

    def _lease(self, profile_id: str, now: datetime) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(update(profiles).where(
                profiles.c.id == profile_id, profiles.c.connected.is_(True),
                or_(profiles.c.sync_lease_until.is_(None), profiles.c.sync_lease_until < now),
            ).values(sync_lease_until=now + self._lease_time)).rowcount == 1

    def _profile(self, profile_id: str) -> dict[str, Any]:
        query = (select(profiles, accounts.c.scope)
                 .join(accounts, accounts.c.id == profiles.c.account_id)
                 .where(profiles.c.id == profile_id))
        with self.engine.connect() as conn:
            return dict(conn.execute(query).one()._mapping)

    def _known_calendars(self, profile_id: str) -> list[Known]:
        """The profile's live calendars, as last listed."""
        query = (select(calendars.c.id, calendars.c.upstream_id, calendars.c.cursor,
                        calendars.c.cursor_epoch)
                 .where(calendars.c.profile_id == profile_id, calendars.c.deleted.is_(False))
                 .order_by(calendars.c.created_at, calendars.c.id))
        with self.engine.connect() as conn:
            return [Known(r.id, r.upstream_id, r.cursor, r.cursor_epoch)
                    for r in conn.execute(query).all()]

    def _save_calendars(self, profile_id: str, upstream: list[Calendar],
                        now: datetime) -> list[Known]:
        """Upsert the profile's calendars; returns the live ones."""
        with self.engine.begin() as conn:
            known = {r.upstream_id: r for r in conn.execute(
                select(calendars).where(calendars.c.profile_id == profile_id)).all()}
            live: list[Known] = []
            changed = False
            for cal in upstream:
                values = {"name": cal.name, "readonly": cal.readonly, "primary": cal.primary,
                          "color": cal.color, "tzid": cal.tzid, "deleted": False}
                row = known.get(cal.calendar_id)
                if row is None:
                    calendar_id = new_id("cal_")
                    conn.execute(insert(calendars).values(
                        id=calendar_id, profile_id=profile_id, upstream_id=cal.calendar_id,
                        created_at=now, **values))
                    live.append(Known(calendar_id, cal.calendar_id, None, 0))
                    changed = True
                else:
                    if any(getattr(row, k) != v for k, v in values.items()):
                        conn.execute(update(calendars).where(calendars.c.id == row.id)
                                     .values(**values))
                        changed = True
                    live.append(Known(row.id, cal.calendar_id, row.cursor, row.cursor_epoch))
            gone = [r.id for u, r in known.items()
                    if u not in {c.calendar_id for c in upstream} and not r.deleted]
            if gone:
                conn.execute(update(calendars).where(calendars.c.id.in_(gone))
                             .values(deleted=True))
                changed = True
            if changed:  # what reads show changed: cached pages must not be served
                bump_generation(conn, profile_id=profile_id)
            conn.execute(update(profiles).where(profiles.c.id == profile_id)
                         .values(calendars_listed_at=now))
        return live

    @property
    def _lease_time(self) -> timedelta:
        return timedelta(seconds=self.settings.lease)

    def _finish(self, profile_id: str, error: str | None, retry_after: float | None,
                connected: bool, started: datetime | None = None) -> None:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            state = conn.execute(select(
                profiles.c.sync_failures, profiles.c.sync_requested_at,
                profiles.c.sync_lease_until, profiles.c.initial_sync_required,
                profiles.c.connected, profiles.c.account_id, accounts.c.created_at)
                .join(accounts, accounts.c.id == profiles.c.account_id)
                .where(profiles.c.id == profile_id)).one()
            failures, requested, lease = (state.sync_failures, state.sync_requested_at,
                                          state.sync_lease_until)
            # A push that arrived while this sync ran may name a change it did not see.
            if started is None:
                started = _aware(lease) - self._lease_time if lease is not None else now
            pushed = requested is not None and _aware(requested) >= started
            if error is None:
                values: dict[str, Any] = {
                    "sync_failures": 0, "last_sync_error": None,
                    "initial_sync_required": False,
                    "next_sync_at": now if pushed
                    else now + timedelta(seconds=self.settings.interval)}
            else:
                delay = retry_after or min(self.settings.max_backoff, 30 * 2 ** failures)
                values = {"sync_failures": failures + 1, "last_sync_error": error[:500],
                          "next_sync_at": now + timedelta(seconds=delay)}
            if not connected:
                values["disconnected_at"] = now
            conn.execute(update(profiles).where(and_(profiles.c.id == profile_id)).values(
                sync_lease_until=None, connected=connected, **values))
            if not connected and state.connected:
                profile_event(conn, profile_id, PROFILE_DISCONNECTED, now)
            if error is None and state.initial_sync_required:
                # A first (or, after the grant widened, a new full) sync: the mirror may
                # hold events the app never heard of, so the change covers everything.
                profile_event(conn, profile_id, PROFILE_INITIAL_SYNC_COMPLETED, now)
                account_changed(conn, state.account_id, _aware(state.created_at), now=now)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
