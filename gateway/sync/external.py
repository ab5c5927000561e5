"""Applying writes to external events upstream (API.md s6.3), queued like other writes.

A row of ``external_writes`` whose ``version`` is ahead of ``applied_version`` is due. The
worker claims it, patches the event by its upstream id (only the fields the app sent) or
deletes it, and on a passing failure (an outage, a rate limit, a sealed secret store)
backs off and tries again; a refusal retrying cannot change (the event is gone, the
upstream forbids it, the input is refused) ends the version with its error kept, shown
on the event's read as ``calgate_write``. A deletion tombstones the mirror at once; after
a patch the profile is synced now, so reads show the upstream's own result.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import Engine, select, update

from providers.errors import NotFound, ProviderError, RateLimited
from providers.model import ChangeSet
from providers.registry import ProviderOptions

from ..domain.external import external_context, patch_from_stored
from ..domain.mirror import Policy, apply_changes
from ..domain.sealing import DataKeys, unseal
from ..observe import metrics
from ..persistence.generation import bump_generation
from ..persistence.tables import accounts, calendars, external_writes, profiles
from ..secrets import SecretStore, SecretStoreUnavailable
from .outbox import CLAIM, PERMANENT, SECRET_STORE_RETRY
from .queue import VersionedQueue

log = logging.getLogger("calgate.external")


@dataclass(frozen=True, slots=True)
class ExternalApplied:
    write_id: int
    ok: bool
    error: str | None = None


class ExternalOutbox(VersionedQueue):
    """Claims due external writes and applies them through the provider."""

    table = external_writes

    def __init__(self, engine: Engine, secrets: SecretStore, keys: DataKeys,
                 options: ProviderOptions | None = None, max_backoff: float = 3600.0) -> None:
        super().__init__(engine, secrets, options, max_backoff)
        self.keys = keys

    async def apply(self, write_id: int) -> ExternalApplied:
        try:
            row = await to_thread.run_sync(self._claim, write_id)
        except SecretStoreUnavailable as exc:
            await to_thread.run_sync(self._release_later, write_id)
            return ExternalApplied(write_id, ok=False, error=str(exc))
        if row is None:
            return ExternalApplied(write_id, ok=False, error="not due or claimed elsewhere")
        try:
            await self._upstream(row)
        except SecretStoreUnavailable as exc:
            await to_thread.run_sync(self._done, row, f"secret store: {exc}",
                                     SECRET_STORE_RETRY, False)
            return ExternalApplied(write_id, ok=False, error=str(exc))
        except ProviderError as exc:
            retry = exc.retry_after if isinstance(exc, RateLimited) else None
            await to_thread.run_sync(self._done, row, str(exc), retry,
                                     isinstance(exc, PERMANENT))
            return ExternalApplied(write_id, ok=False, error=str(exc))
        except (ValueError, TypeError, KeyError) as exc:  # the patch cannot be mapped
            log.exception("external write %s cannot be mapped for the upstream", write_id)
            error = f"the change cannot be written upstream ({type(exc).__name__}: {exc})"
            await to_thread.run_sync(self._done, row, error, None, True)
            return ExternalApplied(write_id, ok=False, error=error)
        await to_thread.run_sync(self._done, row, None, None, True)
        return ExternalApplied(write_id, ok=True)

    async def _upstream(self, row: dict[str, Any]) -> None:
        name = row["provider_name"]
        provider = await self.opener.open(name, row["credential_path"])
        try:
            if row["patch"] is None:
                with suppress(NotFound), metrics.upstream_call(name, "delete_event"):
                    await provider.delete_event(row["upstream_calendar"], row["resource_id"],
                                                None)
                return
            with metrics.upstream_call(name, "patch_event"):
                await provider.patch_event(row["upstream_calendar"], row["resource_id"],
                                           row["patch"])
        finally:
            await provider.close()

    def _claim(self, write_id: int) -> dict[str, Any] | None:
        now = datetime.now(UTC)
        table = external_writes
        with self.engine.begin() as conn:
            won = conn.execute(update(table).where(
                table.c.id == write_id, table.c.applied_version < table.c.version,
                table.c.next_attempt_at <= now).values(next_attempt_at=now + CLAIM)).rowcount
            if won != 1:
                return None
            row = conn.execute(
                select(table, calendars.c.upstream_id.label("upstream_calendar"),
                       calendars.c.profile_id, profiles.c.provider_name,
                       profiles.c.credential_path, accounts.c.scope)
                .join(calendars, calendars.c.id == table.c.calendar_id)
                .join(profiles, profiles.c.id == calendars.c.profile_id)
                .join(accounts, accounts.c.id == table.c.account_id)
                .where(table.c.id == write_id)).one()
        data = dict(row._mapping)
        if data["patch"] is not None:
            key = self.keys.key(data["account_id"])
            assert key is not None
            stored = unseal(key, data["patch"],
                            external_context(data["calendar_id"], data["event_uid"]))
            data["patch"] = patch_from_stored(stored)
        return data

    def _release_later(self, write_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(external_writes).where(external_writes.c.id == write_id)
                         .values(next_attempt_at=datetime.now(UTC)
                                 + timedelta(seconds=SECRET_STORE_RETRY)))

    def _done(self, row: dict[str, Any], error: str | None, retry_after: float | None,
              finished: bool) -> None:
        """Record the outcome; ``finished`` ends this version (applied, or refused for
        good with ``error`` kept for the client)."""
        now = datetime.now(UTC)
        attempts = 0 if error is None else row["attempts"] + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": error and error[:500],
                                  "next_attempt_at": now, "updated_at": now}
        if error is not None:
            log.warning("external write %s failed (attempt %d): %s", row["id"], attempts,
                        error)
            delay = retry_after or min(self.max_backoff, 5 * 2 ** min(attempts, 20))
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        if finished:
            values["applied_version"] = row["version"]
        with self.engine.begin() as conn:
            # Only this version: a newer one written meanwhile stays due.
            conn.execute(update(external_writes).where(
                external_writes.c.id == row["id"],
                external_writes.c.version == row["version"]).values(**values))
            conn.execute(update(external_writes).where(
                external_writes.c.id == row["id"],
                external_writes.c.version != row["version"]).values(next_attempt_at=now))
            bump_generation(conn, account_id=row["account_id"])  # calgate_write changed
            if error is not None:
                return
            if row["patch"] is None:  # gone upstream: tombstone it in the mirror now
                policy = Policy.for_scope(row["account_id"], row["scope"].split())
                apply_changes(conn, row["calendar_id"],
                              ChangeSet(deleted=(row["resource_id"],)), policy,
                              self.keys.key(row["account_id"]), now)
            # The upstream's own result comes back with the next sync: make it now.
            conn.execute(update(profiles).where(profiles.c.id == row["profile_id"]).values(
                next_sync_at=now, sync_requested_at=now))
