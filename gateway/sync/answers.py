"""Sending the account owner's answers to invitations upstream, queued like other writes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import select, update

from providers.errors import Forbidden, InvalidInput, NotFound, ProviderError, RateLimited

from ..observe import metrics
from ..persistence.tables import calendars, events, participation_writes, profiles
from ..secrets import SecretStoreUnavailable
from .outbox import CLAIM, SECRET_STORE_RETRY
from .queue import VersionedQueue

log = logging.getLogger("calgate.answers")


@dataclass(frozen=True, slots=True)
class Answered:
    answer_id: int
    ok: bool
    error: str | None = None


class Answers(VersionedQueue):
    """Claims queued participation answers and applies them through the provider."""

    table = participation_writes

    async def apply(self, answer_id: int) -> Answered:
        row = await to_thread.run_sync(self._claim, answer_id)
        if row is None:
            return Answered(answer_id, ok=False, error="not due or claimed elsewhere")
        try:
            provider = await self.opener.open(row["provider_name"], row["credential_path"])
            try:
                with metrics.upstream_call(row["provider_name"], "set_participation"):
                    await provider.set_participation(
                        row["upstream_calendar"], row["resource_id"],
                        row["instance_id"] if row["recurring"] else None, row["status"])
            finally:
                await provider.close()
        except SecretStoreUnavailable as exc:  # a sealed Vault: the answer waits, kept
            await to_thread.run_sync(self._done, row, f"secret store: {exc}",
                                     SECRET_STORE_RETRY, False)
            return Answered(answer_id, ok=False, error=str(exc))
        except ProviderError as exc:
            permanent = isinstance(exc, Forbidden | InvalidInput | NotFound)
            retry = exc.retry_after if isinstance(exc, RateLimited) else None
            await to_thread.run_sync(self._done, row, str(exc), retry, permanent)
            return Answered(answer_id, ok=False, error=str(exc))
        await to_thread.run_sync(self._done, row, None, None, True)
        return Answered(answer_id, ok=True)

    def _claim(self, answer_id: int) -> dict[str, Any] | None:
        now = datetime.now(UTC)
        table = participation_writes
        with self.engine.begin() as conn:
            won = conn.execute(update(table).where(
                table.c.id == answer_id, table.c.applied_version < table.c.version,
                table.c.next_attempt_at <= now).values(next_attempt_at=now + CLAIM)).rowcount
            if won != 1:
                return None
            row = conn.execute(
                select(table, calendars.c.upstream_id.label("upstream_calendar"),
                       profiles.c.provider_name, profiles.c.credential_path,
                       events.c.resource_id, events.c.instance_id, events.c.recurring)
                .join(calendars, calendars.c.id == table.c.calendar_id)
                .join(profiles, profiles.c.id == calendars.c.profile_id)
                .join(events, (events.c.calendar_id == table.c.calendar_id)
                      & (events.c.event_uid == table.c.event_uid))
                .where(table.c.id == answer_id)).first()
        return None if row is None else dict(row._mapping)

    def _done(self, row: dict[str, Any], error: str | None, retry_after: float | None,
              finished: bool) -> None:
        now = datetime.now(UTC)
        attempts = 0 if error is None else row["attempts"] + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": error and error[:500],
                                  "next_attempt_at": now}
        if error is not None:
            log.warning("answer %s failed (attempt %d): %s", row["id"], attempts, error)
            delay = retry_after or min(self.max_backoff, 5 * 2 ** min(attempts, 20))
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        if finished:
            values["applied_version"] = row["version"]
        with self.engine.begin() as conn:
            conn.execute(update(participation_writes)
                         .where(participation_writes.c.id == row["id"]).values(**values))
