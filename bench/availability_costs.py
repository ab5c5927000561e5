"""Where ``POST /v1/availability``'s time goes, in-process: the CPU of each step of an answer
on the benchmark's stage (bench/availability_setup.py: 10 members x 500 events in a
PostgreSQL mirror synced from Radicale), next to the read it replaced. The evidence behind
bench/HOTSPOTS-availability.md.

    .venv/bin/python bench/availability_costs.py            # about 2 minutes
    .venv/bin/python bench/availability_costs.py --members 4 --events 100

CPU is this process's (``time.process_time``, the mean of ``--rounds`` calls after one
untimed call), so PostgreSQL's own work is not in it; on a shared machine it still rises
with contention, so compare the lines with each other rather than with another run.

The steps: the whole ``AvailabilityService.answer`` (the endpoint's work without HTTP, the
JSON body and authentication) cold (the busy-set cache emptied before each call: the first
question after a change) and warm (the same question again: no event read); its parts: the
members' records (``read_members``, with each account's mirror generation), the busy sets
(``read_spans``: one statement for every member, four columns, times as epoch seconds from
the database, then the merge) and the engine (``member_free`` and ``compute``). The former
read, for comparison: every column with times as aware datetimes (``read_busy_rows``) and
``busy_of`` over them; its spans are checked equal to ``read_spans``'.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
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


def busy_of(rows: list[Any], record: Any) -> list[tuple[int, int]]:
    """The former conversion, kept here to size the change: rows with aware datetimes to a
    merged busy set, a ``datetime.timestamp()`` per row."""
    from datetime import UTC

    from gateway.domain.availability import intervals as iv
    from gateway.domain.availability.busy import local_midnight

    spans = []
    for r in rows:
        if r.all_day:
            zone = record.calendars.get(r.calendar_id) or record.zone
            spans.append((local_midnight(r.start_at.date(), zone),
                          local_midnight(r.end_at.date(), zone)))
        else:
            start, end = (t if t.tzinfo else t.replace(tzinfo=UTC)
                          for t in (r.start_at, r.end_at))
            spans.append((iv.seconds(start), iv.seconds(end)))
    return iv.normalise(spans)


def measure(stage: Any, rounds: int) -> list[tuple[str, float, str]]:
    import anyio

    from gateway.api.availability_body import parse
    from gateway.api.params import Params
    from gateway.domain.availability.engine import compute, member_free
    from gateway.services import availability_mirror as mirror
    from gateway.services.availability import Caller, _reach
    from gateway.services.availability_spans import read_spans

    service = stage.deployment.gateway.availability
    client = stage.deployment.gateway.oauth.registry.find_by_secret(stage.secret)
    query = parse(Params.merge([], stage.question.body())).query
    caller = Caller(str(client.client_id))
    start, end = _reach(query)

    def records() -> dict[str, Any]:
        with service.engine.connect() as conn:
            return mirror.read_members(conn, query.members, caller.client_id, None)

    members = records()

    def spans() -> dict[str, Any]:
        with service.engine.connect() as conn:
            return read_spans(conn, members, start, end, True)

    def former() -> tuple[int, dict[str, Any]]:
        owner = {c: sub for sub, r in members.items() for c in r.calendars}
        with service.engine.connect() as conn:
            rows = mirror.read_busy_rows(conn, owner, start, end, True)
        return len(rows), {sub: busy_of([r for r in rows if owner[r.calendar_id]
                                                == sub], r) for sub, r in members.items()}

    busy = spans()

    def engine() -> Any:
        free = {m.sub: member_free(query, m, busy[m.sub]) for m in query.members}
        return compute(query, free)

    def cold() -> Any:
        if service.spans is not None:
            service.spans.clear()
        return anyio.run(service.answer, query, caller, True)

    cold_ms, answer = cpu_ms(cold, rounds)
    warm_ms, _ = cpu_ms(lambda: anyio.run(service.answer, query, caller, True), rounds)
    records_ms, _ = cpu_ms(records, rounds)
    spans_ms, _ = cpu_ms(spans, rounds)
    engine_ms, _ = cpu_ms(engine, rounds)
    former_ms, (rows, before) = cpu_ms(former, rounds)
    return [
        ("AvailabilityService.answer, cold (busy-set cache emptied first)", cold_ms,
         f"{len(answer.items)} slots"),
        ("AvailabilityService.answer, warm (the same question again)", warm_ms,
         f"cache on: {service.spans is not None}"),
        ("  read_members: records + mirror generations", records_ms, ""),
        ("  read_spans: one statement of epoch seconds + merge", spans_ms,
         f"{sum(map(len, busy.values())):,} spans"),
        ("  engine: member_free + compute", engine_ms, ""),
        ("former read: every column as datetimes (read_busy_rows) + busy_of", former_ms,
         f"{rows:,} rows; spans equal to read_spans': {before == busy}")]


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
