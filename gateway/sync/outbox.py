"""Applying client apps' writes upstream: the durable outbox of ARCHITECTURE.md s2.

A write is a ``managed_events`` row whose ``version`` is ahead of ``applied_version``. The
worker claims due rows, puts or deletes the event upstream (idempotent per managed key, so
a retry after a crash never duplicates), writes the result into the mirror at once
(read-your-writes), and on failure backs off and tries again, for as long as it takes.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import Connection, Engine, and_, select, update

from providers.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderError,
    RateLimited,
    Unavailable,
)
from providers.model import ChangeSet, EventDraft
from providers.registry import ProviderOptions

from ..domain.desired import DesiredEvent
from ..domain.managed import managed_context
from ..domain.mirror import Policy, apply_changes, withdraw
from ..domain.notify import calendar_changed
from ..domain.sealing import DataKeys, unseal
from ..observe import metrics
from ..persistence.generation import bump_generation
from ..persistence.tables import accounts, calendars, managed_events, profiles
from ..secrets import SecretStore, SecretStoreUnavailable
from .queue import VersionedQueue

log = logging.getLogger("calgate.outbox")
SECRET_STORE_RETRY = 15.0  # seconds; a write whose credentials are in a sealed Vault waits
CLAIM = timedelta(minutes=2)  # a claimed write is retried after this if its worker died
# Refusals that retrying the same write cannot change: the version is given up and the
# error kept for the client (GET /v1/batch/{id}, the event's ``calgate_write``).
PERMANENT = (Forbidden, InvalidInput, NotFound)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite: naive UTC


@dataclass(frozen=True, slots=True)
class Applied:
    managed_id: int
    ok: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimedWrite:
    """A write this worker claimed: one version of a managed event, its desired state
    opened (None: delete it upstream), and where it goes.

    ``unreadable`` says why the sealed desired state could not be read back as a
    :class:`DesiredEvent` (a poison row): the same bytes fail the same way every time, so
    the version is given up before any upstream call."""

    id: int
    version: int
    attempts: int
    account_id: str
    calendar_id: str
    event_id: str
    managed_key: str
    resource_id: str | None
    profile_id: str
    provider_name: str
    credential_path: str
    upstream_calendar: str
    scope: str
    desired: DesiredEvent | None
    accepted_at: datetime  # when this version was accepted (the mirror showed it from then)
    unreadable: str | None = None

    def draft(self) -> EventDraft | None:
        """What the provider is asked to make (None: a delete)."""
        return None if self.desired is None else self.desired.draft(self.managed_key)


class Outbox(VersionedQueue):
    """Claims and applies pending writes."""

    table = managed_events

    def __init__(self, engine: Engine, secrets: SecretStore, keys: DataKeys,
                 options: ProviderOptions | None = None, max_backoff: float = 3600.0) -> None:
        super().__init__(engine, secrets, options, max_backoff)
        self.keys = keys

    async def apply(self, managed_id: int) -> Applied:
        try:
            claimed = await to_thread.run_sync(self.claim, managed_id)
        except SecretStoreUnavailable as exc:  # the data key is in a sealed Vault
            await to_thread.run_sync(self.release, managed_id, SECRET_STORE_RETRY)
            return Applied(managed_id, ok=False, error=str(exc))
        if claimed is None:
            return Applied(managed_id, ok=False, error="not due or claimed elsewhere")
        if claimed.unreadable is not None:  # before any upstream call: a poison write makes none
            log.error("write %s cannot be read back: %s", managed_id, claimed.unreadable)
            await to_thread.run_sync(self._failed, claimed, claimed.unreadable, None, True,
                                     False)
            return Applied(managed_id, ok=False, error=claimed.unreadable)
        try:
            resource_id, etag = await self._upstream(claimed)
        except SecretStoreUnavailable as exc:  # a sealed Vault: the write waits, kept
            await to_thread.run_sync(self._failed, claimed, f"secret store: {exc}",
                                     SECRET_STORE_RETRY, False, False)
            return Applied(managed_id, ok=False, error=str(exc))
        except ProviderError as exc:
            permanent = isinstance(exc, PERMANENT)
            retry = exc.retry_after if isinstance(exc, RateLimited) else None
            # "Slow down" (429, 503) is about the whole upstream account, not this write.
            throttled = isinstance(exc, RateLimited | Unavailable)
            await to_thread.run_sync(self._failed, claimed, str(exc), retry, permanent,
                                     throttled)
            return Applied(managed_id, ok=False, error=str(exc))
        except (ValueError, TypeError, KeyError) as exc:
            # The desired state cannot be turned into the upstream's payload (text the
            # upstream's encoding refuses, a value its mapping rejects): the same bytes fail
            # the same way on every retry, so this version is given up, with the reason.
            log.exception("write %s cannot be mapped for the upstream", managed_id)
            error = _cannot_write(exc)
            await to_thread.run_sync(self._failed, claimed, error, None, True, False)
            return Applied(managed_id, ok=False, error=error)
        await to_thread.run_sync(self._applied, claimed, resource_id, etag)
        return Applied(managed_id, ok=True)

    async def _upstream(self, claimed: ClaimedWrite) -> tuple[str | None, str | None]:
        name = claimed.provider_name
        draft = claimed.draft()
        provider = await self.opener.open(name, claimed.credential_path)
        try:
            if draft is None:
                if claimed.resource_id:
                    # Already gone upstream: that is the goal (counted as NotFound).
                    with suppress(NotFound), metrics.upstream_call(name, "delete_event"):
                        await provider.delete_event(claimed.upstream_calendar,
                                                    claimed.resource_id, None)
                return None, None
            with metrics.upstream_call(name, "put_event"):
                written = await provider.put_event(claimed.upstream_calendar, draft,
                                                   claimed.resource_id, None)
            return written.resource_id, written.etag
        finally:
            await provider.close()

    def claim(self, managed_id: int) -> ClaimedWrite | None:
        """Take a due write for this worker (for :data:`CLAIM`, after which another worker
        may retry it); None when it is not due or another worker has it."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            won = conn.execute(update(managed_events).where(
                managed_events.c.id == managed_id,
                managed_events.c.applied_version < managed_events.c.version,
                managed_events.c.next_attempt_at <= now,
            ).values(next_attempt_at=now + CLAIM)).rowcount
            if won != 1:
                return None
            row = conn.execute(
                select(managed_events, calendars.c.upstream_id.label("upstream_calendar"),
                       calendars.c.profile_id, profiles.c.provider_name,
                       profiles.c.credential_path, accounts.c.scope)
                .join(calendars, calendars.c.id == managed_events.c.calendar_id)
                .join(profiles, profiles.c.id == calendars.c.profile_id)
                .join(accounts, accounts.c.id == managed_events.c.account_id)
                .where(managed_events.c.id == managed_id)).one()
        desired, unreadable = self._open_desired(row)
        return ClaimedWrite(
            id=row.id, version=row.version, attempts=row.attempts, account_id=row.account_id,
            calendar_id=row.calendar_id, event_id=row.event_id, managed_key=row.managed_key,
            resource_id=row.resource_id, profile_id=row.profile_id,
            provider_name=row.provider_name, credential_path=row.credential_path,
            upstream_calendar=row.upstream_calendar, scope=row.scope, desired=desired,
            accepted_at=_aware(row.updated_at), unreadable=unreadable)

    def _open_desired(self, row: Any) -> tuple[DesiredEvent | None, str | None]:
        """The row's desired state (None: a delete), or why it cannot be read."""
        if row.desired is None:
            return None, None
        key = self.keys.key(row.account_id)
        assert key is not None
        stored = unseal(key, row.desired, managed_context(row.calendar_id, row.event_id))
        try:
            return DesiredEvent.from_stored(stored), None
        except (ValueError, TypeError, KeyError) as exc:
            return None, _cannot_write(exc)

    def _applied(self, claimed: ClaimedWrite, resource_id: str | None,
                 etag: str | None) -> None:
        now = datetime.now(UTC)
        policy = Policy.for_scope(claimed.account_id, claimed.scope.split())
        key = self.keys.key(claimed.account_id)
        draft = claimed.draft()
        with self.engine.begin() as conn:
            # Only mark what we applied: a newer version written meanwhile stays due.
            conn.execute(update(managed_events).where(and_(
                managed_events.c.id == claimed.id)).values(
                applied_version=claimed.version,
                resource_id=resource_id or claimed.resource_id, etag=etag, attempts=0,
                last_error=None, next_attempt_at=now, updated_at=now))
            old = claimed.resource_id
            if resource_id is None or draft is None:  # deleted upstream: tombstone the mirror
                changes = ChangeSet(deleted=(old,) if old else ())
            elif draft.recurrence is not None:
                # A series: only the upstream knows its occurrences' ids (Graph's are its
                # own), so the profile syncs now and the mirror gets them from there.
                _sync_soon(conn, claimed.profile_id, now)
                bump_generation(conn, account_id=claimed.account_id)  # calgate_write went
                return
            else:
                changes = ChangeSet(changed={resource_id: [draft.as_event(resource_id,
                                                                          etag)]})
            if not apply_changes(conn, claimed.calendar_id, changes, policy, key, now):
                # The mirror already showed this write from when it was accepted (a delete,
                # an update the upstream took as it was): channels still hear that it is
                # applied, from the time the mirror changed. Its calgate_write is gone.
                bump_generation(conn, account_id=claimed.account_id)
                calendar_changed(conn, claimed.account_id, claimed.calendar_id,
                                 claimed.accepted_at, True, now)

    def _failed(self, claimed: ClaimedWrite, error: str, retry_after: float | None,
                permanent: bool, throttled: bool = False) -> None:
        now = datetime.now(UTC)
        attempts = claimed.attempts + 1
        delay = retry_after or min(self.max_backoff, 5 * 2 ** min(attempts, 20))
        retry_at = now + timedelta(seconds=delay)
        values: dict[str, Any] = {"attempts": attempts, "last_error": error[:500],
                                  "next_attempt_at": retry_at}
        if permanent:  # retrying cannot help: give up on this version, keep the error
            values["applied_version"] = claimed.version
        log.warning("write %s failed (attempt %d): %s", claimed.id, attempts, error)
        with self.engine.begin() as conn:
            conn.execute(update(managed_events).where(managed_events.c.id == claimed.id)
                         .values(**values))
            bump_generation(conn, account_id=claimed.account_id)  # calgate_write changed
            if permanent:
                self._settle_refused(conn, claimed, now)
            if throttled:
                held = self._hold_profile(conn, claimed, retry_at)
                if held:
                    log.info("profile %s throttled: %d more writes wait until %s",
                             claimed.profile_id, held, retry_at.isoformat())

    @staticmethod
    def _settle_refused(conn: Connection, claimed: ClaimedWrite, now: datetime) -> None:
        """A write refused for good stops showing its desired state: a create the upstream
        never took disappears (a tombstone, ``deleted: true``); an update or a delete of an
        event the upstream has brings back what the upstream has, by a full resync of the
        calendar, due at once. Unless a newer write of the event is pending already."""
        latest = conn.execute(select(managed_events.c.version).where(
            managed_events.c.id == claimed.id)).scalar()
        if latest != claimed.version:
            return
        if claimed.resource_id is None:
            if withdraw(conn, claimed.calendar_id, claimed.managed_key, claimed.account_id, now):
                calendar_changed(conn, claimed.account_id, claimed.calendar_id, now, True, now)
            return
        conn.execute(update(calendars).where(calendars.c.id == claimed.calendar_id)
                     .values(cursor=None))
        conn.execute(update(profiles).where(profiles.c.id == claimed.profile_id)
                     .values(next_sync_at=now, sync_requested_at=now))

    @staticmethod
    def _hold_profile(conn: Connection, claimed: ClaimedWrite, retry_at: datetime) -> int:
        """Push every other pending write of the row's profile back to ``retry_at``: when an
        upstream says "slow down" (429, or 503), a backfill of hundreds of writes must not
        go on hitting it one write at a time. Writes of other profiles are not touched."""
        mine = select(calendars.c.id).where(calendars.c.profile_id == claimed.profile_id)
        return conn.execute(update(managed_events).where(
            managed_events.c.calendar_id.in_(mine),
            managed_events.c.id != claimed.id,
            managed_events.c.applied_version < managed_events.c.version,
            managed_events.c.next_attempt_at < retry_at,
        ).values(next_attempt_at=retry_at)).rowcount


def _sync_soon(conn: Connection, profile_id: str, now: datetime) -> None:
    """Ask for the profile's next sync at once (as a push does): a sync already running
    when this commits runs again after it, so it cannot miss the write."""
    conn.execute(update(profiles).where(profiles.c.id == profile_id).values(
        next_sync_at=now, sync_requested_at=now))


def _cannot_write(exc: Exception) -> str:
    return f"the event cannot be written upstream ({type(exc).__name__}: {exc})"
