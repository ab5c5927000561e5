"""Batches of writes (``POST /v1/batch``, API.md s11): what each entry became, and how far
the outbox has got with them.

A batch is recorded after its entries: each accepted entry points at the managed event
and version its write produced, so its progress is read straight off ``managed_events``
(``applied_version`` and ``last_error``, as :mod:`gateway.sync.outbox` leaves them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert, select

from ..domain.ids import new_id
from ..persistence.tables import batch_entries, batches, external_writes, managed_events

MAX_ENTRIES = 50  # Cronofy's limit per batch request
ACCEPTED = 202


@dataclass(frozen=True, slots=True)
class EntryResult:
    """One entry's answer, and the write ``(id, version)`` it recorded: of a managed event,
    or with ``external`` of an external event (``event_uid``)."""

    status: int
    written: tuple[int, int] | None = None
    external: bool = False


@dataclass(frozen=True, slots=True)
class Failure:
    position: int
    error: str


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """Counts over a batch's entries: ``accepted`` ones are ``applied``, ``pending`` or
    ``failed`` (the outbox gave up on them); ``rejected`` ones were refused at once."""

    batch_id: str
    created_at: datetime
    entries: int
    accepted: int
    rejected: int
    applied: int
    pending: int
    failed: int
    failures: tuple[Failure, ...]


class BatchService:
    """Records batches and reads their progress."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, subject: str, client_id: str,
               results: Sequence[EntryResult]) -> tuple[str, datetime]:
        """Store a batch's entries in request order; returns its id and creation time."""
        batch_id, now = new_id("bat_"), datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(insert(batches).values(id=batch_id, account_id=subject,
                                                client_id=client_id, entries=len(results),
                                                created_at=now))
            if results:
                conn.execute(insert(batch_entries), [
                    {"batch_id": batch_id, "position": position, "status": result.status,
                     "managed_id": _id(result, external=False),
                     "external_id": _id(result, external=True),
                     "version": result.written[1] if result.written else None}
                    for position, result in enumerate(results)])
        return batch_id, now

    def find_progress(self, subject: str, batch_id: str) -> BatchProgress | None:
        """The batch's progress; None unless it is ``subject``'s own."""
        with self.engine.connect() as conn:
            batch = conn.execute(select(batches.c.entries, batches.c.created_at).where(
                batches.c.id == batch_id, batches.c.account_id == subject)).first()
            if batch is None:
                return None
            rows = conn.execute(
                select(batch_entries.c.position, batch_entries.c.status,
                       batch_entries.c.version,
                       func.coalesce(managed_events.c.id, external_writes.c.id).label("write"),
                       func.coalesce(managed_events.c.applied_version,
                                     external_writes.c.applied_version
                                     ).label("applied_version"),
                       func.coalesce(managed_events.c.last_error,
                                     external_writes.c.last_error).label("last_error"))
                .outerjoin(managed_events, managed_events.c.id == batch_entries.c.managed_id)
                .outerjoin(external_writes,
                           external_writes.c.id == batch_entries.c.external_id)
                .where(batch_entries.c.batch_id == batch_id)
                .order_by(batch_entries.c.position)).all()
        accepted = [r for r in rows if r.status == ACCEPTED]
        done = [r for r in accepted if r.write is None  # a no-op (unknown event deleted)
                or (r.applied_version is not None and r.applied_version >= r.version)]
        failures = tuple(Failure(r.position, r.last_error) for r in done
                         if r.last_error is not None)
        return BatchProgress(
            batch_id=batch_id, created_at=batch.created_at, entries=int(batch.entries),
            accepted=len(accepted), rejected=int(batch.entries) - len(accepted),
            applied=len(done) - len(failures), pending=len(accepted) - len(done),
            failed=len(failures), failures=failures)


def _id(result: EntryResult, *, external: bool) -> int | None:
    if result.written is None or result.external != external:
        return None
    return result.written[0]
