"""Where ``POST /v1/availability``'s time goes, in-process: the CPU of each step of an answer
on the benchmark's stage (bench/availability_setup.py: 10 members x 500 events in a
PostgreSQL mirror synced from Radicale), next to an alternative read that sizes what a
change could save. The evidence behind bench/HOTSPOTS-availability.md.

    .venv/bin/python bench/availability_costs.py            # about 2 minutes
    .venv/bin/python bench/availability_costs.py --members 4 --events 100

CPU is this process's (``time.process_time``, the mean of ``--rounds`` calls after one
untimed call), so PostgreSQL's own work is not in it; on a shared machine it still rises
with contention, so compare the lines with each other rather than with another run.

The steps: the whole ``AvailabilityService.answer`` (the endpoint's work without HTTP, the
JSON body and authentication); its mirror read (``_read``: the members' records, the
longest event of their calendars and their busy rows, every column the explanation could
need, times as aware datetimes); ``busy_of`` over those rows (datetime to epoch seconds,
merge); the engine (``member_free`` and ``compute``). The alternative: one statement for
every member's busy rows with only the calendar and the start and end as epoch seconds
computed by PostgreSQL (``extract(epoch ...)``), then the same merge; its spans are checked
equal to ``busy_of``'s (the benchmark's all-day events are UTC days, so no zone is needed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from availability_setup import Size, staged  # noqa: E402


def cpu_ms(fn: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    fn()
    began = time.process_time()
    for _ in range(rounds):
        out = fn()
    return (time.process_time() - began) / rounds * 1000, out


def one_statement(service: Any, query: Any, client_id: str) -> dict[str, Any]:
    """Every member's busy spans from one statement of epoch seconds (all-day rows taken
    as UTC days: the benchmark's members are all in UTC)."""
    from sqlalchemy import BigInteger, cast, func, or_, select

    from gateway.domain.availability import intervals as iv
    from gateway.persistence.tables import events
    from gateway.services import availability_mirror as mirror
    from gateway.services.availability import _reach

    start, end = _reach(query)
    low, high = start - timedelta(days=1), end + timedelta(days=1)
    with service.engine.connect() as conn:
        records = mirror.read_members(conn, query.members, client_id, None)
        owner = {c: sub for sub, r in records.items() for c in r.calendars}
        rows = conn.execute(select(
            events.c.calendar_id,
            cast(func.extract("epoch", events.c.start_at), BigInteger),
            cast(func.extract("epoch", events.c.end_at), BigInteger)).where(
            events.c.calendar_id.in_(list(owner)), events.c.deleted.is_(False),
            events.c.start_at < high, events.c.end_at > low,
            events.c.status != "cancelled", events.c.transparency != "transparent",
            or_(events.c.participation.is_(None), events.c.participation != "declined"))
        ).all()
    spans: dict[str, list[tuple[int, int]]] = {sub: [] for sub in records}
    for calendar_id, s, e in rows:
        spans[owner[calendar_id]].append((s, e))
    return {sub: iv.normalise(v) for sub, v in spans.items()}


def measure(stage: Any, rounds: int) -> list[tuple[str, float, str]]:
    import anyio

    from gateway.api.availability_body import parse
    from gateway.api.params import Params
    from gateway.domain.availability.engine import compute, member_free
    from gateway.services import availability_mirror as mirror
    from gateway.services.availability import Caller

    gateway = stage.deployment.gateway
    service = gateway.availability
    client = gateway.oauth.registry.find_by_secret(stage.secret)
    query = parse(Params.merge([], stage.question.body())).query
    caller = Caller(str(client.client_id))
    read = service._read(query, caller, True)
    rows = sum(len(r) for r in read.rows.values())

    def spans() -> dict[str, Any]:
        return {s: mirror.busy_of(read.rows[s], read.records[s]) for s in read.rows}

    busy = spans()

    def engine() -> Any:
        free = {m.sub: member_free(query, m, busy[m.sub]) for m in query.members}
        return compute(query, free)

    whole, answer = cpu_ms(lambda: anyio.run(service.answer, query, caller, True), rounds)
    reading, _ = cpu_ms(lambda: service._read(query, caller, True), rounds)
    converting, _ = cpu_ms(spans, rounds)
    computing, _ = cpu_ms(engine, rounds)
    alternative, fast = cpu_ms(lambda: one_statement(service, query, caller.client_id),
                               rounds)
    return [
        ("AvailabilityService.answer, whole", whole, f"{len(answer.items)} slots"),
        ("  _read: member records + busy rows (every column, times as datetimes)", reading,
         f"{rows:,} rows"),
        ("  busy_of: rows to merged epoch spans", converting,
         f"{sum(map(len, busy.values())):,} spans"),
        ("  engine: member_free + compute", computing, ""),
        ("alternative: one statement of epoch seconds + merge (replaces _read + busy_of)",
         alternative, f"spans equal to busy_of's: {fast == busy}")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--events", type=int, default=500)
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="calgate-availability-costs-") as work, \
            staged(Path(work), Size(args.members, args.events),
                   lambda m: print(m, file=sys.stderr)) as stage:
        lines = measure(stage, args.rounds)
    print("| step | CPU per call (this process) | note |\n|---|---:|---|")
    for name, ms, note in lines:
        print(f"| {name} | {ms:.1f} ms | {note} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
