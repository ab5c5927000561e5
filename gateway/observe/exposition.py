"""Serving the metrics: the API's ``/metrics`` and ``calgate worker``'s own port.

Each process keeps its counters (``metrics``). With ``PROMETHEUS_MULTIPROC_DIR`` set,
prometheus_client writes them to files in that directory, and every process's exposition
sums the files of all processes there: ``calgate serve`` with several uvicorn workers then
answers the same totals whichever worker Prometheus reaches. The directory must be empty
when the processes start (``calgate serve`` empties it; the chart gives each pod a fresh
emptyDir). Without it, a process shows its own counters, plus the Python process metrics.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from .state import DatabaseCollector

log = logging.getLogger("calgate.metrics")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> Path | None:
    found = os.environ.get(MULTIPROC_ENV)
    return Path(found) if found else None


def prepare_multiprocess_dir(*, empty: bool) -> None:
    """Create the multiprocess directory; ``empty``: delete the files of earlier runs (dead
    processes' counters would otherwise be summed in)."""
    directory = multiprocess_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    if empty:
        for old in directory.glob("*.db"):
            old.unlink(missing_ok=True)


def process_registry() -> CollectorRegistry:
    """This process's counters, or in multiprocess mode every process's, summed."""
    directory = multiprocess_dir()
    if directory is None:
        return REGISTRY
    directory.mkdir(parents=True, exist_ok=True)  # e.g. uvicorn run directly, not `serve`
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


class _Included(Collector):
    """Another registry's metrics, as one collector of this one."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


def api_registry(engine: Engine, cache_seconds: float = 5.0) -> CollectorRegistry:
    """What the API's ``/metrics`` shows: the process counters and the database's state."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Included(process_registry()))
    registry.register(DatabaseCollector(engine, cache_seconds))
    return registry


def render(registry: CollectorRegistry, accept: str = "") -> tuple[bytes, str]:
    """(body, content type) in the format the scraper's Accept header asks for: Prometheus
    text, or OpenMetrics. Blocking: the database collector queries."""
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type


def serve_worker_metrics(host: str, port: int) -> WSGIServer | None:
    """``calgate worker``'s ``/metrics`` on its own port, in a daemon thread (None: off, or
    the port is taken, e.g. by another worker on this machine: the worker runs anyway)."""
    if not port:
        return None
    try:
        server, _thread = start_http_server(port, addr=host, registry=process_registry())
    except OSError as exc:
        log.warning("worker metrics not served on %s:%d: %s", host, port, exc)
        return None
    log.info("worker metrics on http://%s:%d/metrics", host, port)
    return server
