"""Retrying throttled and failed Graph calls, paused per mailbox.

Graph throttles per app and mailbox and says how long to wait (Retry-After on 429, and on
503/504 when it sends one); other failures back off exponentially with full jitter. The
pause is kept per mailbox for the whole process, so the other jobs of a throttled mailbox
wait as well instead of each earning its own 429.
https://learn.microsoft.com/graph/throttling#best-practices-to-handle-throttling
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from ..errors import RateLimited
from .errors import Throttled, Transient

T = TypeVar("T")
BASE_DELAY = 0.5
MAX_DELAY = 32.0


class MailboxPauses:
    """Until when each mailbox must not be called (monotonic seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def pause(self, mailbox: str, seconds: float) -> None:
        with self._lock:
            until = time.monotonic() + seconds
            self._until[mailbox] = max(until, self._until.get(mailbox, 0.0))

    def remaining(self, mailbox: str) -> float:
        with self._lock:
            until = self._until.get(mailbox, 0.0)
        return max(0.0, until - time.monotonic())


PAUSES = MailboxPauses()


def delay_for(attempt: int, retry_after: float | None, draw: float) -> float:
    """The sleep before retry number ``attempt`` (0-based): at least what Graph asked."""
    if retry_after is not None:
        return retry_after
    return draw * min(MAX_DELAY, BASE_DELAY * 2.0 ** attempt)


async def with_retries(mailbox: str, attempts: int, max_wait: float,
                       call: Callable[[], Awaitable[T]], *,
                       pauses: MailboxPauses = PAUSES,
                       draw: Callable[[], float] = random.random) -> T:
    """``await call()`` after the mailbox's pause, again after a :class:`Throttled` or
    :class:`Transient` failure while ``attempts`` and ``max_wait`` seconds of sleep last;
    then the last failure is raised (RateLimited carries the Retry-After)."""
    slept, attempt = 0.0, 0
    while True:
        waiting = pauses.remaining(mailbox)
        if waiting > 0:
            if slept + waiting > max_wait:
                raise RateLimited(f"Microsoft Graph throttles mailbox {mailbox}", waiting)
            slept += waiting
            await anyio.sleep(waiting)
        try:
            return await call()
        except (Throttled, Transient) as exc:
            wait = delay_for(attempt, exc.retry_after, draw())
            attempt += 1
            if isinstance(exc, Throttled):
                pauses.pause(mailbox, wait)
            if attempt >= attempts or slept + wait > max_wait:
                if isinstance(exc, Throttled):
                    raise RateLimited(str(exc), exc.retry_after or wait) from exc
                raise
            if not isinstance(exc, Throttled):
                slept += wait
                await anyio.sleep(wait)
