"""The counters and histograms each Calgate process keeps for itself.

They live in prometheus_client's default registry. With ``PROMETHEUS_MULTIPROC_DIR`` set
(several uvicorn workers), prometheus_client keeps them in files there instead, and
``exposition.process_registry()`` sums every process's files. No gauges here: a gauge of
one process means little once processes are summed; what the database knows is read at
scrape time by ``state.DatabaseCollector``.

Labels are bounded: route templates (never raw paths), provider names, operation names,
exception class names, grant types.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram, disable_created_metrics

# No ``*_created`` series: they double the series count and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

HTTP_REQUEST_DURATION = Histogram(
    "calgate_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template.",
    ["method", "route", "status_class"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
TOKENS_ISSUED = Counter(
    "calgate_oauth_tokens_issued",
    "Token responses that issued tokens at /oauth/token, by grant type.", ["grant_type"])
UPSTREAM_CALLS = Counter(
    "calgate_upstream_calls",
    "Calls to calendar providers by provider and operation; outcome is `ok` or the class "
    "of the error (Unauthorized, RateLimited, Unavailable, ...).",
    ["provider", "operation", "outcome"])
SYNC_DURATION = Histogram(
    "calgate_sync_duration_seconds",
    "Time one sync of a profile took (its calendars and their changes), by provider.",
    ["provider"], buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0))
DELIVERIES = Counter(
    "calgate_notification_deliveries",
    "Notification delivery attempts to client apps' callback URLs, by outcome (ok, failed).",
    ["outcome"])

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """One HTTP request answered; ``route`` is its template, never the raw path (ids
    would make a series per resource)."""
    HTTP_REQUEST_DURATION.labels(method if method in _METHODS else "other", route,
                                 f"{status // 100}xx").observe(seconds)


def token_issued(grant_type: str) -> None:
    """The authorization server's hook (``CalgateServer.on_token_issued``)."""
    TOKENS_ISSUED.labels(grant_type).inc()


def delivery_attempted(ok: bool) -> None:
    DELIVERIES.labels("ok" if ok else "failed").inc()


@contextmanager
def upstream_call(provider: str, operation: str) -> Iterator[None]:
    """Count the calls to the provider made inside the block, with their outcome."""
    outcome = "ok"
    try:
        yield
    except BaseException as exc:  # cancellation too: it is an outcome, then re-raised
        outcome = type(exc).__name__
        raise
    finally:
        UPSTREAM_CALLS.labels(provider, operation, outcome).inc()


@contextmanager
def timed_sync(provider: str) -> Iterator[None]:
    """Observe how long the block (one profile's sync) takes, whatever its outcome."""
    started = time.perf_counter()
    try:
        yield
    finally:
        SYNC_DURATION.labels(provider).observe(time.perf_counter() - started)
