"""Sync measurements for bench/run_events_bench.py, run in a process of their own so the
peak memory belongs to the sync alone:

    python bench/events_sync.py '<json job>'      # prints "SYNC_JSON {...}" at the end
    python bench/events_sync.py --standalone       # just the sync part of the events bench

``--standalone`` sets up what bench/run_events_bench.py would for the sync (Radicale with
one 5,000-event calendar, warmed; a fresh data dir; one linked profile), runs the job
below in a child process like the full run does, and prints the per-round figures. It
writes no results file.

The job names a linked profile whose calendar Radicale holds. In this process:

1. **Initial sync** of the profile (``SyncEngine.sync_profile`` on an event loop, as the
   worker runs it): wall time, CPU time (``time.process_time``: every thread of this
   process), the process's peak RSS during the sync (``VmHWM`` after resetting it through
   ``/proc/self/clear_refs``) and, with ``tracemalloc``, the peak of Python allocations
   (tracing slows the sync down, so that run's times are not reported).
2. **Incremental syncs** (``rounds``): first one with nothing changed upstream, then
   ``rounds`` times: the owner changes one event (one PUT straight to Radicale), then one
   sync is measured: CPU time, wall time, and every HTTP request Radicale logged with
   Calgate's User-Agent meanwhile.
3. **Profile** (``profile_rounds``; ``profile``: ``always``, or ``auto`` when step 2 misses
   ``cpu_target_s`` (median) or ``requests_target``): the same change-then-sync loop again
   under ``py-spy record`` attached to this process, for the report's profile section.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import events_fixtures as fx  # noqa: E402
from bench_common import proc_status, reset_peak  # noqa: E402


class GcTimer:
    """Collections of the oldest generation, and their time, while it is installed."""

    def __init__(self) -> None:
        self.full = 0
        self.seconds = 0.0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.full += 1
            self.seconds += time.perf_counter() - self._began

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def initial(gateway: Any, profile_id: str, log: fx.RadicaleLog, trace: bool) -> dict[str, Any]:
    gc.collect()
    rss0 = proc_status("VmRSS")
    reset = reset_peak()
    offset = log.offset()
    if trace:
        tracemalloc.start()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    outcome = fx.sync(gateway, profile_id)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    requests = log.requests_since(offset)
    return {"wall_s": wall, "cpu_s": cpu, "changed": outcome.changed,
            "rss_before_kb": rss0, "hwm_kb": proc_status("VmHWM"), "hwm_reset": reset,
            "rss_after_kb": proc_status("VmRSS"), "tracemalloc_peak_b": traced,
            "requests": len(requests), "request_list": fx.describe(requests),
            "mirror_events": fx.mirror_counts(gateway, profile_id)["events"]}


def incremental(gateway: Any, profile_id: str, log: fx.RadicaleLog, job: dict[str, Any],
                index: int | None) -> dict[str, Any]:
    """One sync after the owner changed event ``index`` upstream (None: nothing changed)."""
    if index is not None:
        fx.change_event(job["radicale_base"], job["calendar"], job["prefix"], index,
                        datetime.fromisoformat(job["day0"]), f"Changed {time.time_ns()}")
    fx.make_due(gateway, profile_id)
    offset = log.offset()
    with GcTimer() as collections:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        outcome = fx.sync(gateway, profile_id)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    requests = log.requests_since(offset)
    return {"changed_event": index, "cpu_s": cpu, "wall_s": wall, "changed": outcome.changed,
            "requests": len(requests), "request_list": [str(r) for r in requests],
            "gc_full": collections.full, "gc_full_s": collections.seconds}


def profile(gateway: Any, profile_id: str, log: fx.RadicaleLog, job: dict[str, Any]
            ) -> dict[str, Any]:
    raw = Path(job["profile_raw"])
    spy = subprocess.Popen([job["py_spy"], "record", "--pid", str(os.getpid()), "--rate",
                            "500", "--function", "--format", "raw", "--output", str(raw)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # let py-spy attach
    cpu = []
    try:
        for k in range(job["profile_rounds"]):
            cpu.append(incremental(gateway, profile_id, log, job, 100 + k)["cpu_s"])
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        _, err = spy.communicate(timeout=60)
    if not raw.exists():
        return {"error": err.decode()[-500:]}
    return {"raw": str(raw), "rounds": len(cpu), "cpu_s": cpu}


def main(job: dict[str, Any]) -> dict[str, Any]:
    # Everything a sync imports is imported first, and the database and secret store are
    # opened: the measurements are of the sync, not of this process starting up.
    import anyio  # noqa: F401
    import caldav  # noqa: F401
    import icalendar  # noqa: F401

    import providers.caldav.provider  # noqa: F401

    gateway = fx.open_gateway(job["env"])
    log = fx.RadicaleLog(Path(job["radicale_log"]))
    profile_id = job["profile_id"]
    gateway.worker.sync.keys.key(job["subject"])
    result: dict[str, Any] = {"pid": os.getpid()}
    try:
        result["initial"] = initial(gateway, profile_id, log, job.get("tracemalloc", False))
        if job.get("rounds"):
            rounds = [incremental(gateway, profile_id, log, job, None)]
            rounds += [incremental(gateway, profile_id, log, job, 10 + 37 * k)
                       for k in range(job["rounds"])]
            result["incremental"] = rounds
        # Profiled when asked, or ("auto") when the median CPU time or the request count
        # misses its target.
        changed = result.get("incremental", [])[1:]
        cpu = sorted(r["cpu_s"] for r in changed)
        missed = bool(changed) and (
            cpu[len(cpu) // 2] > job.get("cpu_target_s", 0.1)
            or max(r["requests"] for r in changed) > job.get("requests_target", 3))
        if job.get("profile_rounds") and (job.get("profile") == "always"
                                          or (job.get("profile") == "auto" and missed)):
            result["profile"] = profile(gateway, profile_id, log, job)
    finally:
        gateway.close()
    return result


def standalone(argv: list[str]) -> int:
    """The sync part of bench/run_events_bench.py on its own (see the module docstring)."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="incremental + initial sync of one calendar")
    parser.add_argument("--standalone", action="store_true")
    parser.add_argument("--sync-events", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="never")
    parser.add_argument("--profile-rounds", type=int, default=6)
    args = parser.parse_args(argv)
    day0 = fx.today()
    with tempfile.TemporaryDirectory(prefix="calgate-sync-bench-") as tmp:
        tmpdir = Path(tmp)
        env = fx.settings_env(tmpdir / "data", 8080)  # nothing listens: no API here
        radicale = fx.BenchRadicale(
            {"mid/" + fx.CALENDAR: fx.calendar_items("mid", args.sync_events, day0)})
        radicale.start()
        try:
            secs, listed = fx.warm(radicale.base, "mid/" + fx.CALENDAR)
            print(f"Radicale cached mid/calendar ({listed:,} members) in {secs:.1f} s",
                  flush=True)
            gateway = fx.open_gateway(env, migrate_first=True)
            try:
                mid = fx.link_radicale(gateway, fx.register_client(gateway), radicale.url, "mid")
            finally:
                gateway.close()
            job = {"env": env, "radicale_log": str(radicale.log.path),
                   "radicale_base": radicale.base, "calendar": "mid/" + fx.CALENDAR,
                   "prefix": "mid", "day0": day0.isoformat(), "profile_id": mid.profile_id,
                   "subject": mid.subject, "rounds": args.rounds, "profile": args.profile,
                   "profile_rounds": args.profile_rounds,
                   "py_spy": str(Path(sys.executable).with_name("py-spy")),
                   "profile_raw": str(tmpdir / "sync-incremental.txt")}
            child = subprocess.run([sys.executable, __file__, json.dumps(job)],
                                   capture_output=True, text=True, timeout=600, check=False)
        finally:
            radicale.stop()
    line = next((x for x in child.stdout.splitlines() if x.startswith("SYNC_JSON ")), None)
    if child.returncode or line is None:
        print(child.stdout[-3000:], child.stderr[-3000:], file=sys.stderr)
        return 1
    out = json.loads(line[len("SYNC_JSON "):])
    first = out["initial"]
    print(f"initial sync: {first['wall_s']:.2f} s wall, {first['cpu_s']:.2f} s CPU, "
          f"{first['requests']} requests, {first['mirror_events']:,} rows")
    print("| round | event changed upstream | mirror rows changed | requests | CPU | wall |"
          " full GCs |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for k, r in enumerate(out.get("incremental", [])):
        changed = "none (reference)" if r["changed_event"] is None else f"#{r['changed_event']}"
        print(f"| {k} | {changed} | {r['changed']} | {r['requests']} | "
              f"{1000 * r['cpu_s']:.1f} ms | {1000 * r['wall_s']:.0f} ms | {r['gc_full']} |")
    for k, r in enumerate(out.get("incremental", [])[:2]):
        print(f"round {k} requests: " + "; ".join(r["request_list"]))
    if "profile" in out:
        print("profile:", json.dumps(out["profile"]))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--standalone"]:
        sys.exit(standalone(sys.argv[1:]))
    out = main(json.loads(sys.argv[1]))
    print("SYNC_JSON " + json.dumps(out), flush=True)
