"""Sync measurements for bench/run_microsoft_bench.py, in a process of their own so the CPU
time and peak memory belong to the sync alone. The Microsoft emulator has only a Python
control API and runs in the runner's process, so the runner drives this child step by
step over stdin/stdout (one JSON line each way):

    python bench/microsoft_sync.py '<json job>'
    <- {"op": "sync"}                 -> SYNC_JSON {"wall_s": ..., "cpu_s": ..., ...}
    <- {"op": "sync", "trace": true}  (the same under tracemalloc)
    <- {"op": "quit"}                 (closes the gateway and exits)

Each sync is ``SyncEngine.sync_profile`` on an event loop, as the worker runs it: wall time,
CPU time (``time.process_time``), peak RSS (``VmHWM`` after resetting it), RSS before,
mirror rows changed. The runner counts the upstream requests in the emulator's log between
its command and the answer, and makes the owner's changes between syncs.
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

import microsoft_fixtures as fx  # noqa: E402
from bench_common import MARKER, proc_status, reset_peak  # noqa: E402


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


def measured(gateway: Any, profile_id: str, trace: bool) -> dict[str, Any]:
    rss0 = proc_status("VmRSS")
    reset = reset_peak()
    if trace:
        tracemalloc.start()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    outcome = sync(gateway, profile_id)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    tracemalloc.stop()
    return {"wall_s": wall, "cpu_s": cpu, "changed": outcome.changed, "rss_before_kb": rss0,
            "hwm_kb": proc_status("VmHWM"), "hwm_reset": reset, "tracemalloc_peak_b": traced,
            "mirror_events": mirror_events(gateway, profile_id)}


def main(job: dict[str, Any]) -> None:
    # Import what a sync imports, and open the database and secret store, first: the
    # measurements are of the sync, not of this process starting up.
    import anyio  # noqa: F401
    import msal  # noqa: F401

    import providers.microsoft.provider  # noqa: F401

    gateway = fx.open_gateway(job["env"])
    gateway.worker.sync.keys.key(job["subject"])
    print(MARKER + json.dumps({"pid": os.getpid()}), flush=True)
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "quit":
                break
            result = measured(gateway, job["profile_id"], bool(command.get("trace")))
            print(MARKER + json.dumps(result), flush=True)
    finally:
        gateway.close()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
