"""Sequential reads for bench/run_events_bench.py (Radicale through the caldav library, and
Calgate's whole window page by page), and the areas a sync's py-spy samples are sorted into.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Loop:
    """N sequential requests (each one complete before the next starts)."""

    name: str
    latencies_s: list[float]
    items: int  # events returned by one request (the last one)
    requests_each: int = 1  # HTTP requests per iteration

    @property
    def n(self) -> int:
        return len(self.latencies_s)

    @property
    def per_second(self) -> float:
        return self.n / sum(self.latencies_s)

    @property
    def p50_ms(self) -> float:
        return 1000 * statistics.median(self.latencies_s)

    @property
    def mean_ms(self) -> float:
        return 1000 * statistics.fmean(self.latencies_s)

    @property
    def max_ms(self) -> float:
        return 1000 * max(self.latencies_s)

    @property
    def min_ms(self) -> float:
        return 1000 * min(self.latencies_s)


def timed(name: str, n: int, call: Callable[[], int], warmup: int = 1,
          requests_each: int = 1) -> Loop:
    for _ in range(warmup):
        call()
    latencies, items = [], 0
    for _ in range(n):
        began = time.perf_counter()
        items = call()
        latencies.append(time.perf_counter() - began)
    return Loop(name, latencies, items, requests_each)


def radicale_loops(url: str, user: str, password: str, calendar: str, start: datetime,
                   end: datetime, n: int) -> list[Loop]:
    """The window read straight from Radicale with the caldav library, two ways."""
    import caldav

    client = caldav.DAVClient(url, username=user, password=password)  # type: ignore[operator]
    cal = client.calendar(url=url.rstrip("/") + f"/{calendar}/")

    def search_expand() -> int:
        return len(cal.search(start=start, end=end, event=True, expand=True))

    def date_search() -> int:
        with warnings.catch_warnings():  # deprecated in caldav 2+, still what many call
            warnings.simplefilter("ignore", DeprecationWarning)
            return len(cal.date_search(start, end, expand=False))

    try:
        return [timed("Radicale: calendar.search(start, end, event=True, expand=True)", n,
                      search_expand),
                timed("Radicale: calendar.date_search(start, end, expand=False)", n,
                      date_search)]
    finally:
        client.close()


def calgate_window(base: str, path: str, token: str, n: int) -> tuple[Loop, list[int]]:
    """The same window from Calgate: the first page and every next_page, on one
    keep-alive connection. Returns the loop and the events on each page."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    sizes: list[int] = []

    def get(target: str) -> dict[str, Any]:
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {target[:80]}: HTTP {response.status} {body[:200]!r}")
        data: dict[str, Any] = json.loads(body)
        return data

    def whole() -> int:
        sizes.clear()
        page = get(path)
        sizes.append(len(page["events"]))
        while "next_page" in page["pages"]:
            page = get(urlsplit(page["pages"]["next_page"]).path)
            sizes.append(len(page["events"]))
        return sum(sizes)

    try:
        loop = timed("Calgate: GET /v1/events + every next_page", n, whole)
        return Loop(loop.name, loop.latencies_s, loop.items, len(sizes)), list(sizes)
    finally:
        conn.close()


# -- py-spy areas of a sync (events_load.summarise) ----------------------------------------
SYNC_AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("iCalendar parsing and expansion (icalendar, recurring_ical_events)",
     ("icalendar/", "recurring_ical_events/", "x_wr_timezone", "dateutil/")),
    ("XML: request bodies and multistatus parsing (lxml, caldav.response)",
     ("lxml", "caldav/response.py", "caldav/lib/", "caldav/elements/",
      "providers/caldav/davxml.py")),
    ("HTTP client (niquests, urllib3, sockets)",
     ("niquests/", "urllib3/", "urllib3_future/", "http/client.py", "socket.py",
      "caldav/davclient.py", "caldav/base_client.py")),
    ("SQLAlchemy + sqlite3", ("sqlalchemy/",)),
    ("sealing (AES-GCM) and fingerprints (JSON, SHA-256)",
     ("cryptography/", "gateway/domain/sealing.py", "json/", "hashlib")),
    ("thread hop and event loop (anyio, asyncio, threading)",
     ("anyio/", "asyncio/", "threading.py", "queue.py", "concurrent/")),
    ("providers/caldav (own frames)", ("providers/",)),
    ("gateway (own frames)", ("gateway/",)),
]
