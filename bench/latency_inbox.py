"""The client app's webhook receiver (tests/support/receiver.py: a real HTTP server on
loopback that checks both signatures) seen per channel: each waiter reads only what arrived
since it last looked, so ten accounts waiting at once cost next to nothing, and a
notification is handed out once (by its id) at most."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.support.receiver import Receiver


class Inbox:
    """Notifications by channel, in arrival order, each id once."""

    def __init__(self, client_id: str, secret: str) -> None:
        self.receiver = Receiver(client_id, secret).start()
        self._lock = threading.Lock()
        self._read = 0  # how many of receiver.received are sorted into _by_channel
        self._seen: set[str] = set()
        self._by_channel: dict[str, list[Any]] = {}
        self._taken: set[str] = set()  # notification ids handed to a waiter

    @property
    def url(self) -> str:
        return self.receiver.url

    def stop(self) -> None:
        self.receiver.stop()

    def _sort_new(self) -> None:
        with self.receiver.lock:
            new = self.receiver.received[self._read:]
            self._read += len(new)
        for got in new:
            note = got.notification
            if not 200 <= got.answered < 300 or note["notification_id"] in self._seen:
                continue  # a repeat: receivers de-duplicate by id
            self._seen.add(note["notification_id"])
            channel = got.json["channel"]["channel_id"]
            self._by_channel.setdefault(channel, []).append(got)

    def take(self, channel_id: str, kind: str, after: float, timeout: float) -> Any | None:
        """The first ``kind`` notification of the channel that arrived after ``after``
        (epoch seconds) and was not taken before; None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._sort_new()
                for got in self._by_channel.get(channel_id, []):
                    note = got.notification
                    if (note["type"] == kind and got.at > after
                            and note["notification_id"] not in self._taken):
                        self._taken.add(note["notification_id"])
                        return got
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)  # the arrival time is the receiver's, not this loop's

    def untaken(self, kind: str) -> dict[str, int]:
        """``kind`` notifications nobody took, by channel (changes counted twice would
        show here as well as a missing one)."""
        with self._lock:
            self._sort_new()
            return {channel: n for channel, got in self._by_channel.items()
                    if (n := sum(1 for g in got if g.notification["type"] == kind
                                 and g.notification["notification_id"] not in self._taken))}

    def signatures_valid(self) -> tuple[int, int]:
        """(valid, all) of what arrived: both signature schemes checked by the receiver."""
        with self.receiver.lock:
            received = list(self.receiver.received)
        return sum(1 for r in received if r.cronofy_valid and r.calgate_valid), len(received)
