"""Sync measurements for bench/run_google_bench.py, in a process of their own so the CPU
time and peak memory belong to the sync alone (the emulator runs in the runner's process).
The runner drives this child one command at a time over stdin/stdout (bench/sync_bench.py
describes the commands and what each sync reports):

    python bench/google_sync.py '<json job>'
    <- {"op": "sync"}                 -> SYNC_JSON {"wall_s": ..., "cpu_s": ..., ...}
    <- {"op": "sync", "trace": true}  (the same under tracemalloc)
    <- {"op": "provider_only"}        (the full listing through GoogleProvider.sync alone)
    <- {"op": "quit"}                 (closes the gateway and exits)

The runner makes the owner's changes in Google between syncs and counts the upstream
requests in the emulator's log.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import google_fixtures as fx  # noqa: E402
import sync_bench  # noqa: E402


def provider_only(gateway: Any, job: dict[str, Any], command: dict[str, Any]
                  ) -> dict[str, Any]:
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


def main(job: dict[str, Any]) -> None:
    # What a Google sync imports, loaded before the first measurement.
    import googleapiclient.discovery  # noqa: F401

    import providers.google.provider  # noqa: F401

    sync_bench.serve(job, {"provider_only": provider_only})


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
