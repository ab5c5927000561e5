"""What the worker's write queues share: a table of versioned rows (``version`` asked,
``applied_version`` done, ``next_attempt_at`` when due), claimed one row at a time and
applied upstream through the profile's provider.

The managed-event outbox, external-event writes and participation answers are three such
tables; each queue adds its own claim and apply.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, Table, func, select, update

from providers.registry import ProviderOptions

from ..domain.opener import ProfileOpener
from ..secrets import SecretStore


class VersionedQueue:
    """Due rows, the next due time and releasing a claim, over ``table``."""

    table: Table

    def __init__(self, engine: Engine, secrets: SecretStore,
                 options: ProviderOptions | None = None, max_backoff: float = 3600.0) -> None:
        self.engine = engine
        self.secrets = secrets
        self.options = options or ProviderOptions()
        self.max_backoff = max_backoff

    @property
    def opener(self) -> ProfileOpener:
        """Opens a profile's account with its credentials (and its upstream app's)."""
        return ProfileOpener(self.secrets, self.options)

    def due(self, now: datetime | None = None, limit: int = 100) -> list[int]:
        """Rows whose newest version is not applied yet and whose time has come."""
        table = self.table
        query = (select(table.c.id).where(table.c.applied_version < table.c.version,
                                          table.c.next_attempt_at <= (now or datetime.now(UTC)))
                 .order_by(table.c.next_attempt_at).limit(limit))
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query).all()]

    def next_due(self) -> datetime | None:
        """When the next pending row falls due, a retry's time included (None: nothing is
        pending): the worker sleeps no longer than that."""
        table = self.table
        query = select(func.min(table.c.next_attempt_at)).where(
            table.c.applied_version < table.c.version)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def release(self, row_id: int, delay: float = 0.0) -> None:
        """Give up this worker's claim on a row (shutting down, or the secret store is
        sealed): due again after ``delay`` seconds, for any worker."""
        table = self.table
        with self.engine.begin() as conn:
            conn.execute(update(table).where(
                table.c.id == row_id, table.c.applied_version < table.c.version,
            ).values(next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay)))
