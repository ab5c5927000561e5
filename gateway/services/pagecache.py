"""Rendered read pages, kept per process while the account's mirror is unchanged.

A client app polls the same window again and again; between two syncs the answer does not
change. Each entry is the JSON body of one page, stored under everything that shapes it (the
caller, the resolved query, the page, the token's right to see text, the base URL) and the
account's *mirror generation* when it was rendered. The generation is bumped in the same
transaction as every change to the mirror, so an entry is served only while what it shows
is still what the database holds; a stale one is dropped when next asked for. Entries also
age out after ``max_age`` seconds (their ``next_page`` URLs stay valid for far longer), and
the least recently used go first once ``max_bytes`` is reached.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class PageCache:
    def __init__(self, max_bytes: int, max_age: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        self._entries: OrderedDict[Hashable, tuple[int, float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, generation: int) -> bytes | None:
        """The page stored under ``key`` if it was rendered at ``generation`` and is fresh."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            stored, born, body = entry
            if stored != generation or self.clock() - born > self.max_age:
                self._drop(key)
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key: Hashable, generation: int, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (generation, self.clock(), body)
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes of page bodies held."""
        return self._bytes

    def _drop(self, key: Hashable) -> None:
        _, _, body = self._entries.pop(key)
        self._bytes -= len(body)


__all__ = ["PageCache"]
