"""What the database knows, read at scrape time: outbox depth, sync lag per profile,
notification delivery failures, connected profiles.

Every API process answers ``/metrics`` from the same tables, so each tells the same truth
whichever process Prometheus reaches (no per-process gauge to sum or to go stale). The
queries are aggregates; their result is kept ``cache_seconds`` per process, so frequent
scrapes (or several Prometheus servers) cost the database one round of queries per period.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, and_, case, func, select

from ..persistence.tables import (
    calendars,
    channels,
    deliveries,
    managed_events,
    notifications,
    participation_writes,
    profiles,
)

log = logging.getLogger("calgate.metrics")


class DatabaseCollector(Collector):
    """A prometheus_client collector over Calgate's tables."""

    def __init__(self, engine: Engine, cache_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._at = -float("inf")

    def collect(self) -> Iterable[Metric]:
        with self._lock:  # one scrape at a time queries; the others reuse its answer
            if self.clock() - self._at >= self.cache_seconds:
                self._cached, self._at = self._read(), self.clock()
            return list(self._cached)

    def _read(self) -> list[Metric]:
        up = GaugeMetricFamily("calgate_state_up", "1 when the database could be read for "
                               "the calgate_outbox_*, calgate_profile* and "
                               "calgate_notification_* metrics, else 0.")
        try:
            with self.engine.connect() as conn:
                found = [*_outbox(conn), *_profiles(conn), *_notifications(conn)]
        except Exception as exc:  # a scrape reports the outage, it never fails
            log.warning("metrics: the database could not be read: %s", type(exc).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *found]


def _outbox(conn: Connection) -> list[Metric]:
    pending = GaugeMetricFamily(
        "calgate_outbox_pending", "Work recorded and not yet done, by kind: managed-event "
        "writes not yet applied upstream, participation answers not yet sent, "
        "notifications not yet delivered.", labels=["kind"])
    retrying = GaugeMetricFamily(
        "calgate_outbox_retrying", "Pending work that has failed at least once, by kind.",
        labels=["kind"])
    oldest = GaugeMetricFamily(
        "calgate_outbox_oldest_pending_age_seconds", "Age of the oldest pending work, by "
        "kind (0 when nothing is pending).", labels=["kind"])
    now = datetime.now(UTC)
    for kind, table, since, where in (
            ("write", managed_events, managed_events.c.updated_at,
             managed_events.c.applied_version < managed_events.c.version),
            ("answer", participation_writes, participation_writes.c.updated_at,
             participation_writes.c.applied_version < participation_writes.c.version),
            ("notification", notifications, notifications.c.created_at,
             notifications.c.delivered_at.is_(None))):
        count, failed, first = conn.execute(select(
            func.count(), func.coalesce(func.sum(case((table.c.attempts > 0, 1), else_=0)), 0),
            func.min(since)).where(where)).one()
        pending.add_metric([kind], count)
        retrying.add_metric([kind], failed)
        oldest.add_metric([kind], max(0.0, (now - _aware(first)).total_seconds())
                          if first is not None else 0.0)
    return [pending, retrying, oldest]


def _profiles(conn: Connection) -> list[Metric]:
    counts = GaugeMetricFamily(
        "calgate_profiles", "Linked calendar profiles by provider and state (connected, "
        "disconnected: the upstream refused the credentials, a relink is needed).",
        labels=["provider", "state"])
    failing = GaugeMetricFamily(
        "calgate_profiles_sync_failing", "Connected profiles whose last sync failed.",
        labels=["provider"])
    for provider, connected, count, errors in conn.execute(
            select(profiles.c.provider_name, profiles.c.connected, func.count(),
                   func.count(profiles.c.last_sync_error))
            .group_by(profiles.c.provider_name, profiles.c.connected)):
        counts.add_metric([provider, "connected" if connected else "disconnected"], count)
        if connected:
            failing.add_metric([provider], errors)
    last = GaugeMetricFamily(
        "calgate_profile_last_sync_success_timestamp_seconds", "When a connected profile's "
        "calendars last synced successfully (Unix time).", labels=["profile_id", "provider"])
    lag = GaugeMetricFamily(
        "calgate_profile_sync_lag_seconds", "Seconds since a connected profile last synced "
        "successfully (since it was linked, if it never has).",
        labels=["profile_id", "provider"])
    now = datetime.now(UTC)
    synced = func.max(calendars.c.synced_at)
    rows = conn.execute(
        select(profiles.c.id, profiles.c.provider_name, profiles.c.created_at,
               profiles.c.calendars_listed_at, synced)
        .select_from(profiles.outerjoin(calendars, and_(
            calendars.c.profile_id == profiles.c.id, calendars.c.deleted.is_(False))))
        .where(profiles.c.connected.is_(True))
        .group_by(profiles.c.id, profiles.c.provider_name, profiles.c.created_at,
                  profiles.c.calendars_listed_at))
    for profile_id, provider, created, listed, synced_at in rows:
        # A profile without calendars never sets synced_at: its last calendar listing is
        # then the last sign of a working sync.
        known = [_aware(t) for t in (synced_at, listed) if t is not None]
        success = max(known) if known else None
        if success is not None:
            last.add_metric([profile_id, provider], success.timestamp())
        since = success or _aware(created)
        lag.add_metric([profile_id, provider], max(0.0, (now - since).total_seconds()))
    return [counts, failing, last, lag]


def _notifications(conn: Connection) -> list[Metric]:
    failed = GaugeMetricFamily(
        "calgate_notification_failed_attempts", "Failed delivery attempts in the delivery "
        "log (kept CALGATE_DELIVERY_LOG_DAYS days): no answer, or not 2xx.")
    failed.add_metric([], conn.execute(select(func.count()).select_from(deliveries).where(
        deliveries.c.error.is_not(None))).scalar_one())
    retrying = GaugeMetricFamily(
        "calgate_notification_channels_retrying", "Channels whose next notification has "
        "failed at least once and is being retried.")
    retrying.add_metric([], conn.execute(
        select(func.count(func.distinct(notifications.c.channel_id))).where(
            notifications.c.delivered_at.is_(None),
            notifications.c.first_failed_at.is_not(None))).scalar_one())
    by_status = GaugeMetricFamily(
        "calgate_notification_channels", "Notification channels by status (failing: its "
        "oldest notification has failed for CALGATE_NOTIFY_RETRY_HOURS).", labels=["status"])
    for status, count in conn.execute(select(channels.c.status, func.count())
                                      .group_by(channels.c.status)):
        by_status.add_metric([status], count)
    return [failed, retrying, by_status]


def _aware(value: Any) -> datetime:
    """SQLite keeps no offset: its times are UTC."""
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
