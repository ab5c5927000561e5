"""Delivering ``smart_invite`` notifications to an invite's ``callback_url``.

The same contract as channel notifications (sync/delivery.py): at least once, signed with
the client app's secrets (``Cronofy-HMAC-SHA256`` and ``Calgate-Signature``), through the
outbound guard, 10 s timeout, any 2xx delivers, everything else is retried with exponential
backoff and jitter, and after ``retry_period`` every ``failing_retry`` seconds; nothing is
dropped. Claims expire, so a worker killed mid-delivery costs a repeat, never a loss.
Receivers de-duplicate by ``notification.notification_id`` (``Calgate-Notification-Id``).

The body is Cronofy's Invite Callback: ``{"notification": {"type": "smart_invite"},
"smart_invite": {smart_invite_id, callback_url, recipient, reply}}``.

The same queue carries a managed event's per-event subscription notifications (the row's
``type``, e.g. ``conferencing_assigned``, queued by domain/event_notices.py): their body,
sealed with the account's data key, is ``{"notification": {"type", "notification_id"},
"event": {calendar_id, event_id, event_uid, conferencing: {provider_name, join_url}}}``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from anyio import to_thread
from sqlalchemy import Engine, delete, func, or_, select, update

from ..observe import metrics
from ..persistence.tables import managed_events
from ..persistence.tables import smart_invite_notifications as notices
from ..secrets import SecretStoreUnavailable
from .delivery import Delivered, DeliverySettings, Signer, post

log = logging.getLogger("calgate.delivery")

Unsealer = Callable[[str], dict[str, Any] | None]  # the sealed body -> its JSON, or None
# An event notification's (account_id, sealed body, dedup_key) -> its JSON, or None
EventUnsealer = Callable[[str, str, str], dict[str, Any] | None]
SMART_INVITE = "smart_invite"


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class InviteDeliverer:
    """Claims, sends and records Smart Invite notifications."""

    def __init__(self, engine: Engine, signer: Signer, unseal: Unsealer,
                 settings: DeliverySettings | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 unseal_event: EventUnsealer | None = None) -> None:
        self.engine = engine
        self.signer = signer
        self.unseal = unseal
        self.unseal_event = unseal_event
        self.settings = settings or DeliverySettings()
        self._transport = transport
        self._pruned = 0.0

    def _free(self, now: datetime) -> Any:
        return (notices.c.delivered_at.is_(None),
                or_(notices.c.claimed_until.is_(None), notices.c.claimed_until < now))

    def due(self, now: datetime | None = None, limit: int = 200) -> list[int]:
        now = now or datetime.now(UTC)
        query = (select(notices.c.id).where(*self._free(now), notices.c.next_attempt_at <= now)
                 .order_by(notices.c.next_attempt_at).limit(limit))
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query).all()]

    def next_due(self) -> datetime | None:
        query = select(func.min(notices.c.next_attempt_at)).where(
            *self._free(datetime.now(UTC)))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def release(self, notice_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(notices).where(
                notices.c.id == notice_id, notices.c.delivered_at.is_(None)
            ).values(claimed_until=None))

    async def deliver(self, notice_id: int) -> Delivered:
        claimed = await to_thread.run_sync(self._claim, notice_id)
        if claimed is None:
            return Delivered(notice_id, ok=False, error="not due or claimed elsewhere")
        result = await self._send(claimed)
        await to_thread.run_sync(self._record, claimed, result)
        return result

    async def _send(self, row: Any) -> Delivered:
        kind = row.type or SMART_INVITE
        try:
            content = await to_thread.run_sync(self._open, row, kind)
        except SecretStoreUnavailable as exc:  # a sealed Vault: retried with backoff
            return Delivered(row.id, ok=False, error=f"secret store: {exc}"[:300])
        if content is None:
            return Delivered(row.id, ok=False, error="the notification cannot be unsealed")
        notification = {"type": kind, "notification_id": row.public_id}
        body = json.dumps({"notification": notification, **content},
                          separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "Calgate-Notifications/1",
                   "Calgate-Notification-Id": row.public_id}
        try:
            signed = await to_thread.run_sync(self.signer, row.client_id, body)
        except SecretStoreUnavailable as exc:  # a sealed Vault: retried with backoff
            return Delivered(row.id, ok=False, error=f"secret store: {exc}"[:300])
        if signed is None:
            return Delivered(row.id, ok=False,
                             error="the client app has no signing secret kept")
        return await post(row.id, row.callback_url, headers | signed, body, self.settings,
                          self._transport)

    def _open(self, row: Any, kind: str) -> dict[str, Any] | None:
        if kind == SMART_INVITE:
            return self.unseal(row.sealed_body)
        if self.unseal_event is None or row.account_id is None or row.dedup_key is None:
            return None
        return self.unseal_event(row.account_id, row.sealed_body, row.dedup_key)

    def _claim(self, notice_id: int) -> Any:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            won = conn.execute(update(notices).where(
                notices.c.id == notice_id, *self._free(now), notices.c.next_attempt_at <= now,
            ).values(claimed_until=now + timedelta(seconds=self.settings.claim))).rowcount
            if won != 1:
                return None
            return conn.execute(
                select(notices, managed_events.c.account_id)
                .outerjoin(managed_events, managed_events.c.id == notices.c.managed_event_id)
                .where(notices.c.id == notice_id)).first()

    def _record(self, row: Any, result: Delivered) -> None:
        metrics.delivery_attempted(result.ok)
        now = datetime.now(UTC)
        attempt = row.attempts + 1
        if result.ok:
            values: dict[str, Any] = {"delivered_at": now, "attempts": attempt,
                                      "claimed_until": None, "last_error": None}
        else:
            first_failed = _aware(row.first_failed_at) or now
            failing = (now - first_failed).total_seconds() >= self.settings.retry_period
            delay = self.settings.failing_retry if failing else self.settings.backoff(attempt)
            if failing:  # at most every failing_retry seconds
                log.warning("%s notification %s failing since %s: %s",
                            row.type or SMART_INVITE, row.public_id,
                            first_failed.isoformat(), result.error)
            values = {"attempts": attempt, "claimed_until": None,
                      "first_failed_at": first_failed, "last_error": (result.error or "")[:500],
                      "next_attempt_at": now + timedelta(seconds=delay)}
        with self.engine.begin() as conn:
            conn.execute(update(notices).where(notices.c.id == row.id).values(**values))

    def prune(self, now: datetime | None = None, every: float = 600.0) -> int:
        """Forget notifications delivered more than ``log_days`` ago."""
        if time.monotonic() - self._pruned < every:
            return 0
        self._pruned = time.monotonic()
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.settings.log_days)
        with self.engine.begin() as conn:
            return int(conn.execute(delete(notices).where(
                notices.c.delivered_at.is_not(None), notices.c.delivered_at < cutoff)).rowcount)
