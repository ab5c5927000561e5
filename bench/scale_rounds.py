"""Sync rounds for bench/run_scale_bench.py, timed from what the worker processes write.

A round makes every profile due at once (``next_sync_at = now``) and waits until each has
been synced once. The times come from the rows, not from polling them:

- a sync *starts* at ``calendars.synced_at`` (the engine stamps each calendar with the
  moment its ``sync_profile`` began);
- it *ends* at ``profiles.next_sync_at - CALGATE_SYNC_INTERVAL`` when it succeeded (the
  engine's ``_finish`` schedules the next poll one interval after it finished); a failed
  one gets a backoff instead and ``last_sync_error``, and is counted as a failure.

The initial syncs are timed the same way from the moment the workers were started.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from gateway.persistence.tables import calendars, events, profiles


@dataclass
class Round:
    """One pass over every profile: when each sync started and ended (seconds after t0)."""

    name: str
    profiles: int
    t0: float  # epoch seconds the round began (profiles made due, or workers started)
    ends: list[float] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)  # per sync, end - start
    failures: int = 0
    errors: list[str] = field(default_factory=list)  # a few distinct last_sync_error
    unfinished: int = 0
    events_updated: int = 0  # mirror rows written during the round
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return len(self.ends) + self.failures

    @property
    def seconds(self) -> float:
        """From t0 to the last sync's end."""
        return max(self.ends, default=0.0)

    @property
    def rate(self) -> float:
        """Profiles synced per second over the whole round (ramp-up and tail included)."""
        return len(self.ends) / self.seconds if self.seconds else 0.0

    @property
    def steady_rate(self) -> float:
        """Profiles synced per second between the 10th and the 90th percentile end."""
        ends = sorted(self.ends)
        if len(ends) < 20:
            return self.rate
        a, b = ends[len(ends) // 10], ends[len(ends) * 9 // 10]
        return (len(ends) * 9 // 10 - len(ends) // 10) / (b - a) if b > a else self.rate

    def timeline(self, step: float = 5.0) -> list[int]:
        """Syncs ended in each ``step`` seconds from t0."""
        out = [0] * (int(self.seconds // step) + 1)
        for end in self.ends:
            out[int(end // step)] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        walls = sorted(self.walls)
        return {"name": self.name, "profiles": self.profiles, "synced": len(self.ends),
                "failures": self.failures, "unfinished": self.unfinished,
                "errors": self.errors, "seconds": self.seconds, "rate": self.rate,
                "steady_rate": self.steady_rate, "events_updated": self.events_updated,
                "wall_p50": statistics.median(walls) if walls else None,
                "wall_p95": walls[int(0.95 * (len(walls) - 1))] if walls else None,
                "wall_mean": statistics.fmean(walls) if walls else None,
                "timeline_5s": self.timeline(), **self.extra}


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def make_all_due(engine: Any, at: datetime | None = None) -> float:
    """Every connected profile due now (or at ``at``); returns the epoch time it was set."""
    when = at or datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(update(profiles).where(profiles.c.connected.is_(True))
                     .values(next_sync_at=when))
    return when.timestamp()


def postpone_all(engine: Any, seconds: float) -> None:
    """No profile due for ``seconds`` (a window without syncs)."""
    make_all_due(engine, datetime.now(UTC) + timedelta(seconds=seconds))


def _progress(engine: Any, since: datetime) -> tuple[int, int]:
    """(finished, of which failed) since ``since``: a finished sync, good or failed, moved
    its profile's next poll past the round's start."""
    with engine.connect() as conn:
        done = conn.execute(select(func.count()).select_from(profiles).where(
            profiles.c.next_sync_at > since)).scalar_one()
        failed = conn.execute(select(func.count()).select_from(profiles).where(
            profiles.c.last_sync_error.is_not(None), profiles.c.next_sync_at > since)
        ).scalar_one()
    return int(done), int(failed)


def wait_round(engine: Any, name: str, total: int, t0: float, interval: float,
               timeout: float, log: Any, alive: Any = None, watch: Any = None) -> Round:
    """Wait until every profile finished a sync begun after ``t0``; then read the times.
    ``watch`` is called on every poll (to sample something while the round runs)."""
    since = datetime.fromtimestamp(t0, UTC)
    deadline = time.monotonic() + timeout
    last_log = time.monotonic()
    while True:
        done, failed = _progress(engine, since)
        if done >= total or time.monotonic() > deadline:
            break
        if alive is not None and not alive():
            raise RuntimeError(f"{name}: a Calgate process exited")
        if watch is not None:
            watch()
        if time.monotonic() - last_log > 15:
            log(f"{name}: {done} of {total} synced ({failed} failed)")
            last_log = time.monotonic()
        time.sleep(0.25)
    return read_round(engine, name, total, t0, interval)


class Connections:
    """The most connections the database had open at once, sampled by :meth:`__call__`
    (every process's: the API, the workers and this runner's own pool)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.peak = 0

    def __call__(self) -> None:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM pg_stat_activity "
                                      "WHERE datname = current_database()")).scalar_one()
        self.peak = max(self.peak, int(count))

    def sessions(self) -> int:
        """Sessions opened on the database so far (PostgreSQL 14+; a session counts when it
        reports its statistics, at the latest when it ends)."""
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            )).scalar_one() or 0)


def read_round(engine: Any, name: str, total: int, t0: float, interval: float) -> Round:
    since = datetime.fromtimestamp(t0, UTC)
    started = (select(calendars.c.profile_id, func.min(calendars.c.synced_at).label("s"))
               .group_by(calendars.c.profile_id).subquery())
    query = (select(profiles.c.next_sync_at, profiles.c.last_sync_error, started.c.s)
             .outerjoin(started, started.c.profile_id == profiles.c.id))
    out = Round(name, total, t0)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        out.events_updated = int(conn.execute(select(func.count()).select_from(events).where(
            events.c.updated >= since)).scalar_one())
    for next_at, error, start in rows:
        due = _epoch(next_at)
        if due is None or due <= t0:
            out.unfinished += 1
        elif error is not None:
            out.failures += 1
            if error not in out.errors and len(out.errors) < 5:
                out.errors.append(error)
        else:
            end = due - interval
            out.ends.append(end - t0)
            begun = _epoch(start)
            if begun is not None and begun >= t0:
                out.walls.append(end - begun)
    return out
