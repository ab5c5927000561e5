"""Graph subscriptions: creation with the ``validationToken`` handshake (the emulator POSTs
``?validationToken=...`` to each URL and wants the token back as text/plain, 200, within the
timeout), renewal, deletion, at most 4230 minutes of life for Outlook resources; change
notifications POSTed from a worker thread for every matching event change, with
``clientState``; lifecycle notifications (reauthorizationRequired, subscriptionRemoved,
missed) on demand."""

from __future__ import annotations

import queue
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from .errors import GraphError
from .timeutil import UTC, iso_z, parse_query_time

MAX_MINUTES = 4230
_RESOURCE = re.compile(r"^/?(?:me|users/[^/]+)/(?:calendars/([^/]+)/)?events$", re.IGNORECASE)


@dataclass
class Subscription:
    id: str
    user: str
    tenant: str
    client_id: str
    resource: str
    calendar_id: str | None  # None: every calendar of the mailbox
    change_types: frozenset[str]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires: datetime

    def json(self) -> dict[str, Any]:
        return {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions"
                                  "/$entity", "id": self.id, "resource": self.resource,
                "applicationId": self.client_id, "changeType": ",".join(
                    sorted(self.change_types)), "clientState": self.client_state,
                "notificationUrl": self.notification_url,
                "lifecycleNotificationUrl": self.lifecycle_url,
                "expirationDateTime": iso_z(self.expires), "creatorId": self.user,
                "includeResourceData": False, "latestSupportedTlsVersion": "v1_2",
                "encryptionCertificate": None, "encryptionCertificateId": None,
                "notificationQueryOptions": None, "notificationUrlAppId": None}


@dataclass
class Delivery:
    url: str
    payload: dict[str, Any]
    status: int = 0  # 0: failed to connect
    error: str | None = None


@dataclass
class Push:
    validation_timeout: float = 10.0
    subs: dict[str, Subscription] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    _queue: queue.Queue[Delivery | None] = field(default_factory=queue.Queue)
    _done: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None

    # -- lifecycle of the worker -----------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="msemu-push", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _work(self) -> None:
        with httpx.Client(timeout=10, trust_env=False) as client:
            while (item := self._queue.get()) is not None:
                try:
                    item.status = client.post(item.url, json=item.payload).status_code
                except httpx.HTTPError as exc:
                    item.error = repr(exc)
                with self._done:
                    self.deliveries.append(item)
                    self._done.notify_all()

    def wait(self, count: int, timeout: float) -> list[Delivery]:
        with self._done:
            self._done.wait_for(lambda: len(self.deliveries) >= count, timeout)
            return list(self.deliveries)

    # -- the API ---------------------------------------------------------------------------

    def validate(self, url: str) -> None:
        """The handshake; called without the world lock (the receiver may call back)."""
        token = f"Validation: Testing client application reachability for subscription " \
                f"Request-Id: {uuid.uuid4()}"
        try:
            with httpx.Client(timeout=self.validation_timeout, trust_env=False) as client:
                answer = client.post(url, params={"validationToken": token},
                                     headers={"Content-Type": "text/plain; charset=utf-8"})
            ok = answer.status_code == 200 and answer.text == token
        except httpx.HTTPError:
            ok = False
        if not ok:
            raise GraphError(400, "ValidationError", "Subscription validation request "
                             "failed. Notification endpoint must respond with 200 OK to "
                             "validation request.")

    def check(self, body: dict[str, Any]) -> tuple[str | None, datetime]:
        resource = str(body.get("resource", ""))
        match = _RESOURCE.match(resource)
        if match is None:
            raise GraphError(400, "ExtensionError", f"Operation: Create; Exception: "
                             f"[Status Code: BadRequest; Reason: Resource '{resource}' is "
                             "not supported by this emulator.]")
        if not body.get("notificationUrl", "").startswith(("http://", "https://")):
            raise GraphError(400, "InvalidRequest", "notificationUrl must be a URL.")
        return match.group(1), self.expiry(body.get("expirationDateTime"))

    def expiry(self, text: Any) -> datetime:
        if not text:
            raise GraphError(400, "InvalidRequest", "expirationDateTime is required.")
        when = parse_query_time(str(text))
        now = datetime.now(UTC)
        if when <= now or when > now + timedelta(minutes=MAX_MINUTES):
            raise GraphError(400, "ExtensionError", "Operation: Create; Exception: [Status "
                             "Code: BadRequest; Reason: Subscription expiration can only be "
                             f"{MAX_MINUTES} minutes in the future.]")
        return when

    def add(self, sub: Subscription) -> None:
        self.subs[sub.id] = sub

    def changed(self, user: str, calendar_id: str, event_id: str, kind: str) -> None:
        now = datetime.now(UTC)
        for sub in list(self.subs.values()):
            if sub.user != user or kind not in sub.change_types or sub.expires <= now:
                continue
            if sub.calendar_id is not None and sub.calendar_id != calendar_id:
                continue
            path = f"Users/{sub.user}/Events/{event_id}"
            self._send(sub.notification_url, {
                "subscriptionId": sub.id, "subscriptionExpirationDateTime": iso_z(sub.expires),
                "changeType": kind, "resource": path, "clientState": sub.client_state,
                "tenantId": sub.tenant, "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event", "@odata.id": path,
                    "@odata.etag": f'W/"{secrets.token_hex(8)}"', "id": event_id}})

    def lifecycle(self, subscription_id: str, event: str) -> None:
        sub = self.subs[subscription_id]
        if event == "subscriptionRemoved":
            del self.subs[subscription_id]
        self._send(sub.lifecycle_url or sub.notification_url, {
            "subscriptionId": sub.id, "subscriptionExpirationDateTime": iso_z(sub.expires),
            "lifecycleEvent": event, "clientState": sub.client_state,
            "tenantId": sub.tenant, "resource": sub.resource})

    def _send(self, url: str, notification: dict[str, Any]) -> None:
        self._queue.put(Delivery(url, {"value": [notification]}))
