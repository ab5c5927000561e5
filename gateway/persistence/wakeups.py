"""Waking ``calgate worker`` processes from other processes, through PostgreSQL's
LISTEN/NOTIFY.

The API process records work in the database (a write, a provider's push, a new channel)
and publishes a wake-up; every worker listening sweeps at once instead of at its next
tick. A lost wake-up costs at most a tick: the tables stay the truth. On SQLite (one
process) there is nothing to publish: the in-process worker is woken directly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine, text

log = logging.getLogger("calgate.wakeups")
CHANNEL = "calgate_wake"


class Wakeups:
    """Publishes and listens for wake-ups on one PostgreSQL channel (no-op elsewhere)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.enabled = engine.dialect.name == "postgresql"

    def publish(self) -> None:
        """Wake every listening worker (blocking: one round trip)."""
        if not self.enabled:
            return
        try:
            with self.engine.connect() as conn:
                conn.execute(text(f"NOTIFY {CHANNEL}"))
                conn.commit()
        except Exception as exc:  # a wake-up is an optimisation: the tick still comes
            log.warning("could not publish a wake-up: %s", type(exc).__name__)

    def listen(self, on_wake: Callable[[], None], stop: threading.Event) -> None:
        """Call ``on_wake`` for every wake-up until ``stop`` is set (blocking; run it in a
        thread). Reconnects after a lost connection."""
        if not self.enabled:
            return
        import psycopg

        dsn = self.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        while not stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    on_wake()  # anything published while we were not listening
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            on_wake()
            except Exception as exc:
                log.warning("wake-up listener lost its connection (%s); retrying",
                            type(exc).__name__)
                stop.wait(2.0)
