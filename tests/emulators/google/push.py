"""Watch channels (events.watch, channels.stop) and the notifications Google POSTs to a
channel's address: a ``sync`` message when the channel opens, then ``exists`` after every
change to the watched calendar's events, with Google's X-Goog-* headers and an empty body.
Deliveries run on a thread of their own, so a receiver may call the emulator back."""

from __future__ import annotations

import hashlib
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

DEFAULT_TTL = 604_800  # seconds: 7 days, Google's default for events channels
MAX_TTL = 2_592_000  # 30 days


@dataclass
class Channel:
    id: str
    resource_id: str
    resource_uri: str
    calendar_id: str
    address: str
    token: str | None
    client_id: str
    expires: float  # epoch seconds
    messages: int = 0


@dataclass
class Delivery:
    channel_id: str
    state: str
    number: int
    headers: dict[str, str]
    status: int | None = None  # the receiver's HTTP status, None if it could not be reached
    error: str | None = None


@dataclass
class Push:
    """Channels by id, and the delivery log."""

    channels: dict[str, Channel] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    _queue: queue.Queue[tuple[Channel, Delivery] | None] = field(default_factory=queue.Queue)
    _thread: threading.Thread | None = None
    _done: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._deliver_all, name="google-emu-push",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)

    @staticmethod
    def resource_id(calendar_id: str) -> str:
        """Stable per watched resource, as Google's is."""
        return hashlib.sha256(calendar_id.encode()).hexdigest()[:27]

    def open(self, channel: Channel) -> None:
        self.channels[channel.id] = channel
        self._send(channel, "sync")

    def changed(self, calendar_id: str) -> None:
        now = time.time()
        for channel in list(self.channels.values()):
            if channel.expires <= now:
                del self.channels[channel.id]
            elif channel.calendar_id == calendar_id:
                self._send(channel, "exists")

    def _send(self, channel: Channel, state: str) -> None:
        channel.messages += 1
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": formatdate(channel.expires, usegmt=True),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": channel.resource_uri,
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(channel.messages),
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        delivery = Delivery(channel.id, state, channel.messages, headers)
        self.deliveries.append(delivery)
        self._queue.put((channel, delivery))

    def _deliver_all(self) -> None:
        while (item := self._queue.get()) is not None:
            channel, delivery = item
            request = urllib.request.Request(channel.address, data=b"", method="POST",
                                             headers=delivery.headers)
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    delivery.status = answer.status
            except urllib.error.HTTPError as exc:
                delivery.status = exc.code
            except OSError as exc:
                delivery.error = str(exc)
            with self._done:
                self._done.notify_all()

    def wait(self, predicate: Any, timeout: float = 5.0) -> list[Delivery]:
        """Wait until ``predicate(delivered)`` holds for the deliveries answered so far."""
        deadline = time.monotonic() + timeout
        with self._done:
            while True:
                done = [d for d in self.deliveries if d.status is not None or d.error]
                if predicate(done):
                    return done
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"push deliveries so far: {done}")
                self._done.wait(left)
