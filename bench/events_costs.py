"""CPU cost of each step of GET /v1/events, in-process, for bench/run_events_bench.py.

Each step runs against the same mirror the server reads, one call at a time; the figure is
the CPU microseconds per call (``time.process_time``, best of 5 rounds). Together they
show where a request's CPU goes without uvicorn, Starlette or the thread hop, next to the
server's own CPU per request measured under wrk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any


def _cost(call: Callable[[], Any], n: int, rounds: int = 5) -> float:
    """Best CPU microseconds per call over ``rounds`` rounds of ``n`` calls."""
    call()
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        for _ in range(n):
            call()
        best = min(best, (time.process_time() - began) / n)
    return best * 1e6


def costs(gateway: Any, subject: str, calendar_id: str, day0: datetime, start_day: int,
          days: int) -> tuple[list[tuple[str, float, str]], list[str]]:
    """(step, CPU µs per call, note) for one request's worth of work, and SQLite's plan of
    the page query."""
    import json

    from gateway.services import reads
    from gateway.settings import Settings

    settings: Settings = gateway.settings
    start = day0 + timedelta(days=start_day)
    query = reads.ReadQuery.build("Etc/UTC", start, start + timedelta(days=days),
                                  days_back=settings.sync_days_back,
                                  days_ahead=settings.sync_days_ahead,
                                  calendar_ids=(calendar_id,))
    svc = gateway.reads
    where = reads._filters(query)
    with gateway.engine.connect() as conn:
        count, page, _ = reads.statements(conn, subject, query, where, None, managed=False)
    assert count is not None and page is not None
    key = gateway.worker.sync.keys.key(subject)
    svc.keys.key(subject)
    with gateway.engine.connect() as conn:
        rows = conn.execute(page).all()
    texts = [reads._text(key, r) for r in rows]
    result = svc.events(subject, query, text=True)
    last, last_no, after = result, 1, result.after
    while after is not None:  # follow the keyset to the window's last page
        last_no += 1
        last = svc.events(subject, query, text=True, page=last_no, after=after)
        after = last.after
    last_after = None
    if last_no > 1:
        previous = svc.events(subject, query, text=True)
        for number in range(2, last_no):
            previous = svc.events(subject, query, text=True, page=number, after=previous.after)
        last_after = previous.after
    pager = gateway.oauth.server.keys
    state = {"sub": subject, "client": "cli", "query": query.to_dict(), "page": 2,
             "after": [datetime.now().isoformat(), 1], "exp": 0}
    body = {"pages": {"current": 1, "total": result.total, "next_page": "x" * 200},
            "events": result.items}
    raw_sql = str(page.compile(gateway.engine, compile_kwargs={"literal_binds": True}))
    unbounded = reads.ReadQuery.build("Etc/UTC", start, start + timedelta(days=days),
                                      days_back=settings.sync_days_back,
                                      days_ahead=settings.sync_days_ahead,
                                      calendar_ids=(calendar_id,), include_moved=True,
                                      last_modified=day0 - timedelta(days=3650))

    def run_count() -> None:
        with gateway.engine.connect() as conn:
            conn.execute(count).scalar_one()

    def run_page() -> None:
        with gateway.engine.connect() as conn:
            conn.execute(page).all()

    def run_page_raw() -> None:
        with gateway.engine.connect() as conn:
            conn.connection.driver_connection.execute(raw_sql).fetchall()

    def page_at(day: int) -> Callable[[], None]:
        """The page query for a window of the same length starting ``day`` days from today:
        how its cost depends on where the window sits in the mirror."""
        at = day0 + timedelta(days=day)
        moved = reads.ReadQuery.build("Etc/UTC", at, at + timedelta(days=days),
                                      days_back=settings.sync_days_back,
                                      days_ahead=settings.sync_days_ahead,
                                      calendar_ids=(calendar_id,))
        with gateway.engine.connect() as conn:
            _, stmt, _ = reads.statements(conn, subject, moved, reads._filters(moved), None,
                                          managed=False)
        assert stmt is not None

        def run() -> None:
            with gateway.engine.connect() as conn:
                conn.execute(stmt).all()
        return run

    def run_checks() -> None:
        with gateway.engine.connect() as conn:
            reads._calendars(conn, subject, query)

    def run_generation() -> None:
        svc.generation(subject)

    def run_unbounded() -> None:
        svc.events(subject, unbounded, text=True)

    n = len(rows)
    steps: list[tuple[str, Callable[[], Any], int, str]] = [
        ("ReadService.events (the whole service call)",
         lambda: svc.events(subject, query, text=True), 20,
         f"{n} events; what runs in the worker thread"),
        (f"ReadService.events, last page (page {last_no}: {len(last.items)} events)",
         lambda: svc.events(subject, query, text=True, page=last_no, after=last_after), 20,
         "keyset: start_at > after OR (start_at = after AND id > after_id)"),
        ("  count query (SQLAlchemy, pooled connection)", run_count, 50,
         f"{result.total} pages' worth of rows counted"),
        ("  page query (SQLAlchemy: build, compile-cache, execute, fetch 100 rows)",
         run_page, 30, "ORDER BY start_at, id LIMIT 100"),
        ("    same SQL on the raw sqlite3 connection", run_page_raw, 30,
         "sizes SQLAlchemy's share of the page query"),
        ("    same query, window moved to day -35 (near the mirror's first event)",
         page_at(-35), 30, "index range: from - longest event - 1 day .. to"),
        ("    same query, window moved to day +180 (near its last event)",
         page_at(180), 20, "index range: from - longest event - 1 day .. to"),
        ("  the account's calendars (ownership, read-only flags, longest event)",
         run_checks, 50, ""),
        (f"  unseal x{n} (AES-GCM + json.loads per event)",
         lambda: [reads._text(key, r) for r in rows], 30, ""),
        (f"  event_body x{n} (dict building)",
         lambda: [reads.event_body(r, t, True, query, False)
                  for r, t in zip(rows, texts, strict=True)], 30, ""),
        ("JSON encoding of the page (Starlette's json.dumps settings)",
         lambda: json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None,
                            separators=(",", ":")).encode(), 30,
         f"{len(json.dumps(body)):,} bytes"),
        ("sealing the next_page URL (pager.seal)",
         lambda: pager.seal("calgate/events-page", state), 200, ""),
        ("the mirror generation (what a cached page is checked against)", run_generation,
         200, "one indexed SELECT; all a cache hit costs besides HTTP and auth"),
        ("what-if: ReadService.events with no lower bound (include_moved)", run_unbounded, 10,
         "every changed row since: the index range is all that precedes `to`"),
    ]
    with gateway.engine.connect() as conn:
        plan = [str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + raw_sql)]
    return [(name, _cost(call, reps), note) for name, call, reps, note in steps], plan


def costs_markdown(rows: list[tuple[str, float, str]], plan: list[str],
                   server_ms: float | None, load: float | None = None) -> list[str]:
    out = ["### Where a request's CPU goes (in-process, one call at a time)", "",
           "`bench/events_costs.py`: CPU per call, best of 5 rounds, against the same "
           "mirror and window as the wrk runs."
           + (f" For scale: the server spent {server_ms:.2f} ms of CPU per request under "
              "wrk (1 connection)." if server_ms else "")
           + (f" Other processes used {load:.2f} cores just before these ran." if load
              is not None else ""), "",
           "| step | CPU per call | note |", "|---|---:|---|"]
    out += [f"| {name} | {us / 1000:.2f} ms | {note} |" for name, us, note in rows]
    out += ["", "SQLite's plan for the page query (`EXPLAIN QUERY PLAN`):", "", "```"]
    return out + plan + ["```", ""]
