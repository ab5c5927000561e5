"""Delivering notifications to client apps' callback URLs: at least once, in order per
channel, signed, with every attempt logged.

The worker claims the oldest undelivered notification of a channel (only that one: a
channel's notifications go out in order, one at a time), POSTs it with a 10 s timeout and
records the attempt. A 2xx answer delivers it; anything else is retried with exponential
backoff and jitter. A channel whose oldest notification has failed for the whole retry
period (24 h) is marked ``failing`` and from then on tried every ``failing_retry`` seconds:
it is never dropped, and the first success makes it active again.

Claims expire (``claim`` seconds, more than the timeout), so a worker killed in the middle
of a delivery costs a late, repeated delivery, never a lost one. Receivers de-duplicate by
the notification's id (``notification.notification_id`` and ``Calgate-Notification-Id``).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from anyio import to_thread
from sqlalchemy import Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from providers.errors import ProviderError
from providers.outbound import OutboundPolicy
from providers.outbound.httpx_transport import GuardedTransport

from ..domain.notify import second
from ..observe import metrics
from ..persistence.tables import channels, deliveries, notifications
from ..secrets import SecretStoreUnavailable

log = logging.getLogger("calgate.delivery")

Signer = Callable[[str, bytes], dict[str, str] | None]  # (client id, body) -> headers


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    timeout: float = 10.0
    retry_base: float = 2.0  # first retry after about this long, doubling each time…
    max_backoff: float = 3600.0  # …up to this
    retry_period: float = 86400.0  # failing this long marks the channel failing
    failing_retry: float = 6 * 3600.0  # how often a failing channel is tried
    claim: float = 30.0  # a claimed notification is free again after this (worker died)
    log_days: float = 7.0  # delivery log and delivered notifications are kept this long
    # The outbound guard's policy (the operator's allowed networks, the resolver).
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)

    def backoff(self, attempt: int) -> float:
        """Seconds before delivery attempt ``attempt + 1``: doubling from ``retry_base`` up
        to ``max_backoff``, with jitter that spreads the retries of many notifications."""
        ceiling = min(self.max_backoff, self.retry_base * 2 ** min(attempt - 1, 30))
        return float(ceiling * random.uniform(0.5, 1.0))


@dataclass(frozen=True, slots=True)
class Delivered:
    notification_id: int
    ok: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0


def body_of(row: Any) -> bytes:
    """The request body of a notification (API.md s9.2), plus Calgate's id for de-dup."""
    notification: dict[str, Any] = {"type": row.type}
    if row.changes_since is not None:
        notification["changes_since"] = _wire_time(row.changes_since)
    if row.profile_id is not None:
        notification["profile_id"] = row.profile_id
    notification["notification_id"] = row.public_id
    filters: dict[str, Any] = {}
    if row.calendar_ids:
        filters["calendar_ids"] = list(row.calendar_ids)
    if row.only_managed:
        filters["only_managed"] = True
    payload = {"notification": notification,
               "channel": {"channel_id": row.channel_id, "callback_url": row.callback_url,
                           "filters": filters}}
    return json.dumps(payload, separators=(",", ":")).encode()


def _wire_time(value: datetime) -> str:
    return second(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def post(notification_id: int, url: str, headers: dict[str, str], body: bytes,
               settings: DeliverySettings,
               transport: httpx.AsyncBaseTransport | None = None) -> Delivered:
    """POST one signed notification through the outbound guard; never raises."""
    started = time.perf_counter()
    # A redirect is an answer like any other non-2xx (max_redirects=0): a callback is
    # never re-sent elsewhere, and the notification is retried at the URL registered.
    transport = transport or GuardedTransport(
        httpx.AsyncHTTPTransport(trust_env=False), settings.outbound, max_redirects=0)
    status: int | None = None
    error: str | None = None
    try:
        async with httpx.AsyncClient(transport=transport, follow_redirects=False,
                                     trust_env=False,
                                     timeout=settings.timeout) as client:
            response = await client.post(url, content=body, headers=headers)
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except ProviderError as exc:  # the guard: a refused address, an unresolvable name
        error = str(exc)[:300]
    except httpx.TimeoutException:
        error = f"no answer in {settings.timeout:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    elapsed = int((time.perf_counter() - started) * 1000)
    return Delivered(notification_id, ok=error is None, status_code=status, error=error,
                     duration_ms=elapsed)


class Deliverer:
    """Claims, sends and records notifications."""

    def __init__(self, engine: Engine, signer: Signer,
                 settings: DeliverySettings | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.engine = engine
        self.signer = signer
        self.settings = settings or DeliverySettings()
        self._transport = transport
        self._pruned = 0.0

    def due(self, now: datetime | None = None, limit: int = 200) -> list[int]:
        """The oldest undelivered notification of each channel, where it is due and free."""
        now = now or datetime.now(UTC)
        heads = (select(func.min(notifications.c.id))
                 .where(notifications.c.delivered_at.is_(None))
                 .group_by(notifications.c.channel_id).scalar_subquery())
        query = (select(notifications.c.id)
                 .where(notifications.c.id.in_(heads), notifications.c.next_attempt_at <= now,
                        or_(notifications.c.claimed_until.is_(None),
                            notifications.c.claimed_until < now))
                 .order_by(notifications.c.next_attempt_at).limit(limit))
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query).all()]

    def next_due(self) -> datetime | None:
        """When the next pending notification falls due (None: nothing is pending)."""
        now = datetime.now(UTC)
        heads = (select(func.min(notifications.c.id))
                 .where(notifications.c.delivered_at.is_(None))
                 .group_by(notifications.c.channel_id).scalar_subquery())
        query = select(func.min(notifications.c.next_attempt_at)).where(
            notifications.c.id.in_(heads),
            or_(notifications.c.claimed_until.is_(None), notifications.c.claimed_until < now))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def release(self, notification_id: int) -> None:
        """Give up this worker's claim (shutting down mid-delivery): it may have reached
        the receiver, so it is sent again; receivers de-duplicate by its id."""
        with self.engine.begin() as conn:
            conn.execute(update(notifications).where(
                notifications.c.id == notification_id,
                notifications.c.delivered_at.is_(None)).values(claimed_until=None))

    async def deliver(self, notification_id: int) -> Delivered:
        claimed = await to_thread.run_sync(self._claim, notification_id)
        if claimed is None:
            return Delivered(notification_id, ok=False, error="not due or claimed elsewhere")
        body = body_of(claimed)
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "Calgate-Notifications/1",
                   "Calgate-Notification-Id": claimed.public_id}
        try:
            signed = await to_thread.run_sync(self.signer, claimed.client_id, body)
        except SecretStoreUnavailable as exc:  # a sealed Vault: retried with backoff
            result = Delivered(notification_id, ok=False, error=f"secret store: {exc}"[:300])
            await to_thread.run_sync(self._record, claimed, result)
            return result
        if signed is None:
            result = Delivered(notification_id, ok=False,
                               error="the client app has no signing secret kept")
        else:
            headers |= signed
            result = await self._post(notification_id, claimed.callback_url, headers, body)
        await to_thread.run_sync(self._record, claimed, result)
        return result

    async def _post(self, notification_id: int, url: str, headers: dict[str, str],
                    body: bytes) -> Delivered:
        return await post(notification_id, url, headers, body, self.settings, self._transport)

    def _claim(self, notification_id: int) -> Any:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            row = conn.execute(select(notifications.c.channel_id).where(
                notifications.c.id == notification_id)).first()
            if row is None:
                return None
            head = (select(func.min(notifications.c.id))
                    .where(notifications.c.channel_id == row.channel_id,
                           notifications.c.delivered_at.is_(None)).scalar_subquery())
            won = conn.execute(update(notifications).where(
                notifications.c.id == notification_id, notifications.c.id == head,
                notifications.c.delivered_at.is_(None), notifications.c.next_attempt_at <= now,
                or_(notifications.c.claimed_until.is_(None),
                    notifications.c.claimed_until < now),
            ).values(claimed_until=now + timedelta(seconds=self.settings.claim))).rowcount
            if won != 1:
                return None
            return conn.execute(
                select(notifications, channels.c.client_id, channels.c.callback_url,
                       channels.c.calendar_ids, channels.c.only_managed,
                       channels.c.status.label("channel_status"))
                .join(channels, channels.c.id == notifications.c.channel_id)
                .where(notifications.c.id == notification_id)).first()

    def _record(self, row: Any, result: Delivered) -> None:
        metrics.delivery_attempted(result.ok)
        now = datetime.now(UTC)
        attempt = row.attempts + 1
        with self.engine.begin() as conn:
            if result.ok:
                conn.execute(update(notifications).where(notifications.c.id == row.id).values(
                    delivered_at=now, attempts=attempt, claimed_until=None))
                conn.execute(update(channels).where(channels.c.id == row.channel_id).values(
                    last_delivered_at=now, status="active", failing_since=None))
            else:
                first_failed = _aware(row.first_failed_at) or now
                failing = (now - first_failed).total_seconds() >= self.settings.retry_period
                delay = (self.settings.failing_retry if failing
                         else self.settings.backoff(attempt))
                conn.execute(update(notifications).where(notifications.c.id == row.id).values(
                    attempts=attempt, claimed_until=None, first_failed_at=first_failed,
                    next_attempt_at=now + timedelta(seconds=delay)))
                if failing and row.channel_status != "failing":
                    log.warning("channel %s failing since %s: %s", row.channel_id,
                                first_failed.isoformat(), result.error)
                    conn.execute(update(channels).where(channels.c.id == row.channel_id)
                                 .values(status="failing", failing_since=first_failed))
            try:
                with conn.begin_nested():
                    conn.execute(insert(deliveries).values(
                        channel_id=row.channel_id, notification_id=row.public_id,
                        type=row.type, attempt=attempt, at=now,
                        status_code=result.status_code,
                        error=None if result.error is None else result.error[:500],
                        duration_ms=result.duration_ms))
            except IntegrityError:  # the channel was deleted meanwhile: nothing to log
                pass

    def prune(self, now: datetime | None = None, every: float = 600.0) -> int:
        """Forget log rows and delivered notifications older than ``log_days``."""
        if time.monotonic() - self._pruned < every:
            return 0
        self._pruned = time.monotonic()
        now = now or datetime.now(UTC)
        cutoff = now - timedelta(days=self.settings.log_days)
        with self.engine.begin() as conn:
            gone = conn.execute(delete(deliveries).where(deliveries.c.at < cutoff)).rowcount
            gone += conn.execute(delete(notifications).where(
                notifications.c.delivered_at.is_not(None),
                notifications.c.delivered_at < cutoff)).rowcount
        return int(gone)
