"""Benchmark (issue 15): ``POST /v1/availability`` against what an app must do without it,
for the same question in the same run.

Run from the repository root (a few minutes; PostgreSQL on CALGATE_TEST_PG_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres):

    .venv/bin/python bench/run_availability_bench.py              # writes RESULTS-availability.md
    .venv/bin/python bench/run_availability_bench.py --no-write   # prints the report only
    .venv/bin/python bench/run_availability_bench.py --members 4 --events 100 --rounds 50

What it does:

1. **The stage** (bench/availability_setup.py): 10 members, each a Radicale account whose
   calendar holds 500 events over the 4 weeks of the question (bench/availability_fixtures.py:
   meetings in working hours, tentative, transparent and cancelled ones, evenings and
   weekends, all-day events), written into Radicale's storage before it starts; the same
   events in the Google emulator; a fresh PostgreSQL database, ``calgate serve`` (one API
   worker) and ``calgate worker``, whose initial syncs fill the mirror from Radicale; then
   the worker is stopped.
2. **The question**: 2 groups (2 members who must all be free, 8 of whom 2 must be), the
   working hours (08:00-18:00 UTC) of the 20 weekdays of 4 weeks as query periods,
   60-minute slots every 15 minutes, ``response_format: "slots"``, ``max_results`` 512.
3. **Four answers, timed in turn** (bench/availability_methods.py): ``POST
   /v1/availability`` warm (``--rounds``, after ``--warmup``: the same question again) and
   cold (``--cold-rounds``, each after every member's mirror generation is moved, as a
   sync or a write moves it: the first question after a change); ``GET /v1/free_busy`` paged for
   every member plus the slots computed client-side (``--free-busy-rounds``); Radicale's
   free-busy REPORT per member plus the same computation (``--radicale-rounds``); the
   Google emulator's ``freebusy.query`` per member through google-api-python-client plus
   the same computation (``--google-rounds``). Each answer is compared slot for slot with
   the slots of the calendars as generated; the API process's CPU time per availability
   request comes from /proc.
4. **Report** (bench/availability_report.py): p50/p99 of each, the ratios against the
   targets (p50 <= 10 ms, p99 <= 50 ms; >= 20x faster than free_busy, >= 100x than the
   providers), the machine and the exact command, to stdout, bench/RESULTS-availability.md
   and bench/RESULTS.md (bench/results_index.py). ``--profile`` adds a py-spy profile of
   the API process over ``--profile-rounds`` more availability requests (py-spy in the
   venv, and permission to ptrace).

Every process started here (Radicale, the API, the worker) is stopped by its PID; the
Google emulator runs in this process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import availability_methods as am  # noqa: E402
import availability_report as rep  # noqa: E402
import availability_slots as sl  # noqa: E402
import bench_common as common  # noqa: E402
from availability_setup import Size, Stage, staged  # noqa: E402

log = common.log


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--events", type=int, default=500, help="events per member")
    p.add_argument("--rounds", type=int, default=500, help="POST /v1/availability")
    p.add_argument("--cold-rounds", type=int, default=200,
                   help="POST /v1/availability, each after a change (cache miss)")
    p.add_argument("--warmup", type=int, default=30, help="untimed rounds of each method")
    p.add_argument("--free-busy-rounds", type=int, default=40)
    p.add_argument("--radicale-rounds", type=int, default=6)
    p.add_argument("--google-rounds", type=int, default=40)
    p.add_argument("--profile", action="store_true", help="py-spy the API process")
    p.add_argument("--profile-rounds", type=int, default=1500)
    p.add_argument("--no-write", action="store_true", help="print, do not write")
    p.add_argument("--json", type=Path, help="also write the raw result here")
    p.add_argument("--keep", action="store_true", help="keep the work dir (process logs)")
    return p.parse_args(argv)


def api_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children, from /proc."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def method_result(timing: am.Timing, reference: tuple[sl.Slot, ...],
                  names: dict[str, str]) -> dict[str, Any]:
    return {"samples": list(timing.samples), "p50": timing.p50, "p99": timing.p99,
            "p90": timing.quantile(0.9), "min": min(timing.samples),
            "max": max(timing.samples), "rounds": len(timing.samples),
            "requests": timing.requests, "slots": len(timing.answer),
            "compare": am.compare(reference, timing.answer, names)}


def measure_all(stage: Stage, args: argparse.Namespace) -> dict[str, Any]:
    methods = am.Methods(stage)
    names = stage.sub_of()
    reference = tuple(sl.slots(stage.question, {
        m.sub: sl.from_calendar(stage.calendars[m.user]) for m in stage.members}))
    out: dict[str, Any] = {"reference_slots": len(reference)}
    api = stage.deployment.api
    assert api is not None
    try:
        try:
            methods.endpoint()
        except RuntimeError as exc:
            out["endpoint"] = {"error": str(exc)[:300]}
            log(f"endpoint: {exc}")
        else:
            cpu0 = api_cpu(api.pid)
            timing = am.timed("endpoint", methods.endpoint, args.rounds, args.warmup,
                              methods.counter("endpoint"))
            out["endpoint"] = method_result(timing, reference, names)
            out["endpoint"]["api_cpu_s"] = (api_cpu(api.pid) - cpu0) / (
                args.rounds + args.warmup)
            log(f"endpoint: p50 {timing.p50 * 1000:.2f} ms")
            cpu0 = api_cpu(api.pid)
            timing = am.timed("endpoint_cold", methods.endpoint, args.cold_rounds, 0,
                              methods.counter("endpoint"), prepare=methods.change)
            out["endpoint_cold"] = method_result(timing, reference, names)
            out["endpoint_cold"]["api_cpu_s"] = (api_cpu(api.pid) - cpu0) / args.cold_rounds
            log(f"endpoint cold: p50 {timing.p50 * 1000:.2f} ms")
        for name, rounds in (("free_busy", args.free_busy_rounds),
                             ("radicale", args.radicale_rounds),
                             ("google", args.google_rounds)):
            timing = am.timed(name, getattr(methods, name), rounds,
                              min(args.warmup, max(1, rounds // 5)), methods.counter(name))
            out[name] = method_result(timing, reference, names)
            log(f"{name}: p50 {timing.p50 * 1000:.1f} ms")
        if args.profile and "samples" in out["endpoint"]:
            import availability_profile

            out["profile"] = availability_profile.record(
                api.pid, methods.endpoint, args.profile_rounds, stage.deployment.workdir)
    finally:
        methods.close()
    return out


def describe(stage: Stage) -> dict[str, Any]:
    q = stage.question
    names = stage.sub_of()
    kinds = Counter(e.kind for events in stage.calendars.values() for e in events)
    return {"groups": [[[names[s] for s in g.members], g.required] for g in q.groups],
            "periods": len(q.periods), "first": q.span[0].isoformat(),
            "last": q.span[1].isoformat(), "duration_min": q.duration.seconds // 60,
            "interval_min": q.interval.seconds // 60, "max_results": q.max_results,
            "kinds": dict(kinds), "mirrored": [m.mirrored for m in stage.members],
            "sync_s": stage.sync_seconds, "body": q.body()}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="calgate-availability-bench-"))
    out: dict[str, Any] = {"load_before": os.getloadavg(),
                           "other_benchmarks": rep.other_benchmarks(),
                           "size": {"members": args.members, "events": args.events}}
    began = time.monotonic()
    try:
        with staged(work, Size(args.members, args.events), log) as stage:
            out["question"] = describe(stage)
            out["postgres"] = stage.deployment.server_version()
            out["methods"] = measure_all(stage, args)
    finally:
        if args.keep:
            log(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    out["load_after"] = os.getloadavg()
    out["seconds"] = time.monotonic() - began
    out["machine"] = rep.machine(out["postgres"])
    out["argv"] = common.reproducible(sys.argv[1:])
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    result = measure(args)
    return common.finish(args, result, rep.render(result), "availability")


if __name__ == "__main__":
    raise SystemExit(main())
