"""Sync measurements for bench/run_google_bench.py, in a process of their own so the CPU
time and peak memory belong to the sync alone (the emulator runs in the runner's process):

    python bench/google_sync.py '<json job>'      # prints "SYNC_JSON {...}" at the end

1. **Initial sync** of the profile through ``SyncEngine.sync_profile`` on an event loop, as
   the worker runs it: wall time, CPU time (``time.process_time``), peak RSS (``VmHWM``
   after resetting it), the upstream requests (from the emulator's log); then the same
   again under tracemalloc in a second child (``trace``) for the peak of Python allocations.
2. **Incremental syncs**: one with nothing changed, then ``rounds`` times: the owner renames
   one event in Google, one sync is measured (requests, CPU, wall); last, the owner renames
   a whole weekly series.
"""

from __future__ import annotations

import json
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import google_fixtures as fx  # noqa: E402
from bench_common import proc_status, reset_peak  # noqa: E402


def sync(gateway: Any, profile_id: str) -> Any:
    import anyio
    from sqlalchemy import update

    from gateway.persistence.tables import profiles

    with gateway.engine.begin() as conn:
        conn.execute(update(profiles).where(profiles.c.id == profile_id)
                     .values(next_sync_at=fx.today()))
    outcome = anyio.run(gateway.worker.sync.sync_profile, profile_id)
    if not outcome.ran or outcome.error is not None:
        raise RuntimeError(f"sync of {profile_id} failed: {outcome}")
    return outcome


def mirror_events(gateway: Any, profile_id: str) -> int:
    from sqlalchemy import func, select

    from gateway.persistence.tables import calendars, events

    with gateway.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events).join(
            calendars, calendars.c.id == events.c.calendar_id).where(
            calendars.c.profile_id == profile_id, events.c.deleted.is_(False))).scalar_one())


def initial(gateway: Any, job: dict[str, Any], log: fx.EmulatorLog) -> dict[str, Any]:
    offset = log.offset()
    rss0 = proc_status("VmRSS")
    reset = reset_peak()
    if job.get("trace"):
        tracemalloc.start()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    outcome = sync(gateway, job["profile_id"])
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    traced = tracemalloc.get_traced_memory()[1] if job.get("trace") else None
    tracemalloc.stop()
    requests = log.since(offset)
    return {"wall_s": wall, "cpu_s": cpu, "changed": outcome.changed, "rss_before_kb": rss0,
            "hwm_kb": proc_status("VmHWM"), "hwm_reset": reset, "tracemalloc_peak_b": traced,
            "requests": len(requests), "request_list": fx.describe(requests),
            "mirror_events": mirror_events(gateway, job["profile_id"])}


def incremental(gateway: Any, job: dict[str, Any], log: fx.EmulatorLog,
                event_id: str | None) -> dict[str, Any]:
    if event_id is not None:
        fx.change_event(job["google_url"], job["email"], event_id, f"Changed {time.time_ns()}")
    offset = log.offset()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    outcome = sync(gateway, job["profile_id"])
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    requests = log.since(offset)
    return {"changed_event": event_id, "cpu_s": cpu, "wall_s": wall, "changed": outcome.changed,
            "requests": len(requests), "request_list": fx.describe(requests)}


def provider_only(job: dict[str, Any]) -> dict[str, Any]:
    """The same full listing through ``GoogleProvider.sync`` alone (no mirror writes), to
    tell the provider's share of the initial sync from the sync engine's."""
    import anyio

    from providers.google.config import GoogleSettings
    from providers.registry import ProviderOptions, open_account

    window = fx.sync_window()
    settings = {"google": GoogleSettings.from_values(job["endpoints"])}
    provider = open_account("google", job["credentials"], ProviderOptions(settings=settings))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    changes = anyio.run(provider.sync, job["email"], None, window)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    anyio.run(provider.close)
    return {"wall_s": wall, "cpu_s": cpu,
            "instances": sum(len(v) for v in changes.changed.values())}


def main(job: dict[str, Any]) -> dict[str, Any]:
    # Import what a sync imports, and open the database and secret store, first: the
    # measurements are of the sync, not of this process starting up.
    import anyio  # noqa: F401
    import googleapiclient.discovery  # noqa: F401

    import providers.google.provider  # noqa: F401

    gateway = fx.open_gateway(job["env"])
    log = fx.EmulatorLog(job["google_url"])
    gateway.worker.sync.keys.key(job["subject"])
    result: dict[str, Any] = {"pid": os.getpid()}
    try:
        if job.get("credentials"):
            result["provider_only"] = provider_only(job)
        result["initial"] = initial(gateway, job, log)
        if job.get("rounds"):
            rounds = [incremental(gateway, job, log, None)]
            rounds += [incremental(gateway, job, log, f"bench{10 + 37 * k:05d}")
                       for k in range(job["rounds"])]
            # A whole series renamed: its instances come again (events.list + instances).
            rounds.append(incremental(gateway, job, log, "series0"))
            result["incremental"] = rounds
    finally:
        gateway.close()
    return result


if __name__ == "__main__":
    out = main(json.loads(sys.argv[1]))
    print("SYNC_JSON " + json.dumps(out), flush=True)
