"""A small in-process TTL cache for the hot read paths (bearer tokens, clients).

The database stays the truth. Every write in this process clears what it touched at once;
another API process sees a revocation or a rotated client secret at most ``ttl`` seconds
late (``CALGATE_AUTH_CACHE_SECONDS``, default 1; 0 turns caching off).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from threading import Lock
from typing import Generic, TypeVar

from anyio import to_thread

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Bounded, thread-safe mapping whose entries expire ``ttl`` seconds after being set."""

    def __init__(self, ttl: float, maxsize: int = 10_000) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = Lock()
        self._loading: dict[K, asyncio.Future[V | None]] = {}

    async def load(self, key: K, loader: Callable[[], V | None]) -> V | None:
        """The cached value, or ``loader()`` run in a worker thread, once for all callers.

        When an entry expires under load, every request for it would otherwise query the
        database at the same moment; here they share one query (single flight).
        """
        value = self.get(key)
        if value is not None:
            return value
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(to_thread.run_sync(loader))
            self._loading[key] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(pending)

    def get(self, key: K) -> V | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] < time.monotonic():
                del self._items[key]
                return None
            return item[1]

    def set(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._items[key] = (time.monotonic() + self.ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def discard(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
