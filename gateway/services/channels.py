"""Client apps' notification channels (API.md s9.1): create, list, close, the delivery log
and replay.

A callback URL is where Calgate will POST, so it is checked like any URL a user gives:
``https`` unless the operator allows plain ``http`` for that host, and never an address on
loopback, private or link-local networks unless the operator allows that network (the
delivery checks the address again when it connects, against DNS rebinding).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, func, insert, select

from providers.outbound import BlockedAddress, OutboundPolicy, UnresolvableHost

from ..domain.ids import new_id
from ..domain.notify import CHANGE, VERIFICATION, account_changed, queue
from ..persistence.tables import calendars, channels, deliveries, notifications, profiles

MAX_URL = 2048


class ChannelError(Exception):
    """A channel request Calgate refuses: ``field`` and ``code`` name it for a 422."""

    def __init__(self, field: str, code: str, description: str) -> None:
        super().__init__(description)
        self.field, self.code, self.description = field, code, description


class ChannelNotFound(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    per_account: int = 128
    http_hosts: Sequence[str] = ()  # hosts a callback may reach over plain http
    # The outbound guard's policy (the operator's allowed networks, the resolver).
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)


def check_callback_url(url: str, settings: ChannelSettings) -> None:
    """Refuse a callback URL Calgate must not (or cannot safely) POST to."""

    def refuse(code: str, text: str) -> ChannelError:
        return ChannelError("callback_url", code, text)

    if not url or len(url) > MAX_URL:
        raise refuse("invalid", f"callback_url must be a URL of at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or (80 if parts.scheme == "http" else 443)
    except ValueError:
        raise refuse("invalid", "callback_url is not a valid URL") from None
    if parts.scheme not in {"http", "https"} or not host:
        raise refuse("invalid", "callback_url must be an absolute https URL")
    if parts.username or parts.password:
        raise refuse("invalid", "callback_url must not carry credentials")
    if parts.fragment:
        raise refuse("invalid", "callback_url must not have a fragment")
    if parts.scheme == "http" and host.lower() not in {h.lower() for h in settings.http_hosts}:
        raise refuse("https_required",
                     "callback_url must be https (the operator may allow plain http for a "
                     "host with CALGATE_CALLBACK_HTTP_HOSTS)")
    try:
        settings.outbound.addresses(host, port)
    except UnresolvableHost:
        raise refuse("unresolvable", f"{host} does not resolve to an address") from None
    except BlockedAddress as exc:
        raise refuse("forbidden_address",
                     f"callback_url leads to {exc.address}, a {exc.rule} address (the "
                     "operator may allow a network with CALGATE_OUTBOUND_ALLOW_NETWORKS)",
                     ) from None


def _digest(url: str, calendar_ids: Sequence[str] | None, only_managed: bool) -> str:
    key = json.dumps([url, sorted(calendar_ids) if calendar_ids else None, only_managed])
    return hashlib.sha256(key.encode()).hexdigest()


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(row: Any, pending: int | None = None) -> dict[str, Any]:
    """The channel in API.md s9.1's shape, plus Calgate's delivery state."""
    filters: dict[str, Any] = {}
    if row.calendar_ids:
        filters["calendar_ids"] = list(row.calendar_ids)
    if row.only_managed:
        filters["only_managed"] = True
    described = {"channel_id": row.id, "callback_url": row.callback_url, "filters": filters,
                 "status": row.status, "failing_since": _time(row.failing_since),
                 "last_delivered_at": _time(row.last_delivered_at),
                 "created_at": _time(row.created_at)}
    if pending is not None:
        described["pending_notifications"] = pending
    return described


class ChannelService:
    """The /v1/channels use cases for one account (the token's subject)."""

    def __init__(self, engine: Engine, settings: ChannelSettings | None = None,
                 has_signing_secret: Callable[[str], bool] | None = None) -> None:
        self.engine = engine
        self.settings = settings or ChannelSettings()
        self.has_signing_secret = has_signing_secret

    def create(self, subject: str, client_id: str, callback_url: str,
               calendar_ids: Sequence[str] | None, only_managed: bool) -> dict[str, Any]:
        """The new channel (its verification queued), or the identical existing one."""
        if calendar_ids is not None and not calendar_ids:
            raise ChannelError("filters.calendar_ids", "required",
                               "filters.calendar_ids must not be empty when present")
        check_callback_url(callback_url, self.settings)
        if self.has_signing_secret is not None and not self.has_signing_secret(client_id):
            raise ChannelError("callback_url", "unsigned",
                               "this client app has no secret to sign notifications with (a "
                               "public client, or one registered before Calgate kept "
                               "secrets: rotate its secret)")
        ids = list(dict.fromkeys(calendar_ids)) if calendar_ids else None
        digest = _digest(callback_url, ids, only_managed)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            existing = conn.execute(select(channels).where(
                channels.c.account_id == subject, channels.c.digest == digest)).first()
            if existing is not None:
                return describe(existing)
            if ids:
                known = set(conn.execute(
                    select(calendars.c.id).join(profiles,
                                                profiles.c.id == calendars.c.profile_id)
                    .where(profiles.c.account_id == subject, calendars.c.id.in_(ids))
                ).scalars())
                missing = [c for c in ids if c not in known]
                if missing:
                    raise ChannelError("filters.calendar_ids", "not_found",
                                       f"no such calendar: {', '.join(missing)}")
            count = conn.execute(select(func.count()).select_from(channels).where(
                channels.c.account_id == subject)).scalar_one()
            if count >= self.settings.per_account:
                raise ChannelError("callback_url", "too_many_channels",
                                   f"an account may have at most {self.settings.per_account} "
                                   "channels; close one first")
            channel_id = new_id("chn_")
            conn.execute(insert(channels).values(
                id=channel_id, account_id=subject, client_id=client_id,
                callback_url=callback_url, calendar_ids=ids, only_managed=only_managed,
                digest=digest, status="active", created_at=now))
            queue(conn, channel_id, VERIFICATION, now)
            row = conn.execute(select(channels).where(channels.c.id == channel_id)).one()
        return describe(row)

    def list(self, subject: str) -> list[dict[str, Any]]:
        waiting = (select(notifications.c.channel_id, func.count().label("n"))
                   .where(notifications.c.delivered_at.is_(None))
                   .group_by(notifications.c.channel_id).subquery())
        query = (select(channels, waiting.c.n)
                 .outerjoin(waiting, waiting.c.channel_id == channels.c.id)
                 .where(channels.c.account_id == subject)
                 .order_by(channels.c.created_at, channels.c.id))
        with self.engine.connect() as conn:
            return [describe(r, r.n or 0) for r in conn.execute(query).all()]

    def close(self, subject: str, channel_id: str) -> None:
        """Close the channel; its pending notifications and log go with it."""
        with self.engine.begin() as conn:
            gone = conn.execute(delete(channels).where(
                channels.c.id == channel_id, channels.c.account_id == subject)).rowcount
        if not gone:
            raise ChannelNotFound(channel_id)

    def _own(self, conn: Any, subject: str, channel_id: str) -> Any:
        row = conn.execute(select(channels).where(
            channels.c.id == channel_id, channels.c.account_id == subject)).first()
        if row is None:
            raise ChannelNotFound(channel_id)
        return row

    def deliveries(self, subject: str, channel_id: str, limit: int = 100) -> dict[str, Any]:
        """The channel's most recent delivery attempts, newest first."""
        with self.engine.connect() as conn:
            row = self._own(conn, subject, channel_id)
            rows = conn.execute(select(deliveries).where(
                deliveries.c.channel_id == channel_id)
                .order_by(deliveries.c.id.desc()).limit(limit)).all()
            waiting = conn.execute(select(func.count()).select_from(notifications).where(
                notifications.c.channel_id == channel_id,
                notifications.c.delivered_at.is_(None))).scalar_one()
        return {"channel": describe(row, waiting),
                "deliveries": [{"notification_id": d.notification_id, "type": d.type,
                                "attempt": d.attempt, "at": _time(d.at),
                                "status": d.status_code, "error": d.error,
                                "duration_ms": d.duration_ms} for d in rows]}

    def replay(self, subject: str, channel_id: str, since: datetime) -> int:
        """Send again what happened since ``since``: a ``change`` from then, and the
        profile notifications queued since (with new ids). Returns how many were queued."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            self._own(conn, subject, channel_id)
            earlier = conn.execute(select(notifications.c.type, notifications.c.profile_id)
                                   .where(notifications.c.channel_id == channel_id,
                                          notifications.c.created_at >= since,
                                          notifications.c.type.not_in([CHANGE, VERIFICATION]))
                                   .order_by(notifications.c.id)).all()
            for kind, profile_id in earlier:
                queue(conn, channel_id, kind, now, profile_id=profile_id)
            account_changed(conn, subject, since, channel_ids=[channel_id], now=now)
        return len(earlier) + 1
