"""Retrying throttled and failed calls: exponential backoff with full jitter (a delay drawn
uniformly from [0, min(max_delay, base_delay * 2**attempt)]), never shorter than the
Retry-After Google sent, bounded in attempts and in total sleep. Google asks for exactly
this: https://developers.google.com/workspace/calendar/api/guides/quota#backoff."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from ..errors import RateLimited
from .config import RetryPolicy
from .errors import Throttled, Transient

T = TypeVar("T")


def delay_for(policy: RetryPolicy, attempt: int, retry_after: float | None,
              draw: float) -> float:
    """The sleep before retry number ``attempt`` (0-based); ``draw`` is uniform in [0, 1)."""
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** attempt)
    return max(draw * ceiling, retry_after or 0.0)


async def with_retries(policy: RetryPolicy, call: Callable[[], Awaitable[T]], *,
                       sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
                       draw: Callable[[], float] = random.random) -> T:
    """``await call()``, again after a :class:`Throttled` or :class:`Transient` failure
    while attempts and the sleep budget last; then the last failure is raised (a
    RateLimited carries the Retry-After, so the caller can reschedule)."""
    slept = 0.0
    attempt = 0
    while True:
        try:
            return await call()
        except (Throttled, Transient) as exc:
            attempt += 1
            wait = delay_for(policy, attempt - 1, exc.retry_after, draw())
            if attempt >= policy.attempts or slept + wait > policy.max_wait:
                if isinstance(exc, Throttled):
                    raise RateLimited(str(exc), exc.retry_after or wait) from exc
                raise
            slept += wait
            await sleep(wait)
