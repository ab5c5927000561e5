"""Run a coroutine to completion from synchronous test code, even when the calling thread
already runs an event loop (Playwright's sync API leaves one running in xdist workers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn`` in a fresh thread: code that runs its own event loop (``asyncio.run``,
    as a form connector's ``verify`` does in the server's worker threads) cannot run in a
    thread whose loop is already running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()
