"""Throttling of wrong client secrets (OAUTH.md 47), shared by every API process.

Each failure is a row of ``oauth_client_auth_failures``, so replicas behind a load balancer
count the same failures instead of multiplying the limit. A bucket is a digest of (client id,
source address): a flood from one address cannot lock the client out elsewhere, and a secret
pasted into the ``client_id`` field by mistake is never stored.
"""

from __future__ import annotations

import hashlib
import math
import time
from datetime import timedelta

from sqlalchemy import Engine, delete, func, insert, select

from .grants_store import _aware, now
from .tables import auth_failures


class FailureThrottle:
    """Sliding window of failed client authentications per (client id, source address)."""

    def __init__(self, engine: Engine, limit: int, window: float = 60.0,
                 quiet_seconds: float = 1.0) -> None:
        self.engine = engine
        self.limit = limit
        self.window = timedelta(seconds=window)
        self.quiet_seconds = quiet_seconds
        self._quiet_until = 0.0

    def retry_after(self, key: tuple[str, str]) -> int:
        """Seconds until ``key`` may try again; 0 if it may now."""
        if time.monotonic() < self._quiet_until:
            return 0
        t = now()
        with self.engine.connect() as conn:
            anything = conn.execute(select(auth_failures.c.id).where(
                auth_failures.c.at > t - self.window).limit(1)).first()
        if anything is None:
            # No failure anywhere: skip the per-key count for a moment (the common case).
            self._quiet_until = time.monotonic() + self.quiet_seconds
            return 0
        query = select(func.count(), func.min(auth_failures.c.at)).where(
            auth_failures.c.bucket == _bucket(key), auth_failures.c.at > t - self.window)
        with self.engine.connect() as conn:
            count, oldest = conn.execute(query).one()
        if count < self.limit:
            return 0
        return max(1, math.ceil((_aware(oldest) + self.window - t).total_seconds()))

    def record(self, key: tuple[str, str]) -> None:
        """Count one failure; failures older than the window are forgotten on the way."""
        self._quiet_until = 0.0
        t = now()
        with self.engine.begin() as conn:
            conn.execute(delete(auth_failures).where(auth_failures.c.at <= t - self.window))
            conn.execute(insert(auth_failures).values(bucket=_bucket(key), at=t))


def _bucket(key: tuple[str, str]) -> str:
    return hashlib.sha256("\x00".join(key).encode()).hexdigest()
