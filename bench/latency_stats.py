"""Statistics for bench/run_latency_bench.py: percentiles, a confidence interval for the
median, and each latency split at the timestamps the processes wrote.

Latency = t1 - t0: t0 is when the upstream change was sent (the owner's PUT to Radicale,
the emulator call), t1 when the receiver got the first ``change`` notification of that
account's channel after t0. The split uses the profile's scheduled poll and push request
and the notification's queueing and delivery attempt (PostgreSQL, written by the API and
worker processes) and the emulator's request times, so a report says what dominates.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

Record = dict[str, Any]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """A distribution-free confidence interval for the median, from order statistics."""
    ordered, n = sorted(values), len(values)
    j = 0
    while j < n and sum(math.comb(n, i) for i in range(j + 1)) / 2 ** n <= (1 - level) / 2:
        j += 1
    j = max(j, 1)
    return ordered[j - 1], ordered[n - j]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95),
            "min": min(values), "max": max(values), "mean": statistics.fmean(values)}


def caldav_parts(r: Record) -> dict[str, float]:
    """Wait for the poll; poll due -> notification queued (worker pick-up and the sync);
    queued -> POST sent; POST -> received."""
    due = max(r["poll_due"], r["t0"])
    return {"wait for the poll": due - r["t0"], "poll due → queued": r["queued_at"] - due,
            "queued → POST sent": r["post_started_at"] - r["queued_at"],
            "POST → received": r["t1"] - r["post_started_at"]}


def google_parts(r: Record) -> dict[str, float]:
    """Push handled by the API; wait for the worker's sweep; the sync; delivery."""
    push, sync = r["push_at"] or r["t0"], r["sync_request_at"] or r["t0"]
    return {"change → push handled by the API": push - r["t0"],
            "push → worker's events.list": sync - push,
            "events.list → queued": r["queued_at"] - sync,
            "queued → POST sent": r["post_started_at"] - r["queued_at"],
            "POST → received": r["t1"] - r["post_started_at"]}
