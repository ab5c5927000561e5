"""Sync measurements for bench/run_microsoft_bench.py, in a process of their own so the CPU
time and peak memory belong to the sync alone. The Microsoft emulator has only a Python
control API and runs in the runner's process, so the runner drives this child step by
step over stdin/stdout (one JSON line each way; bench/sync_bench.py describes the commands
and what each sync reports):

    python bench/microsoft_sync.py '<json job>'
    <- {"op": "sync"}                 -> SYNC_JSON {"wall_s": ..., "cpu_s": ..., ...}
    <- {"op": "sync", "trace": true}  (the same under tracemalloc)
    <- {"op": "quit"}                 (closes the gateway and exits)

Each sync is ``SyncEngine.sync_profile`` on an event loop, as the worker runs it. The runner
counts the upstream requests in the emulator's log between its command and the answer, and
makes the owner's changes between syncs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import sync_bench  # noqa: E402


def main(job: dict[str, Any]) -> None:
    # What a Microsoft sync imports, loaded before the first measurement.
    import msal  # noqa: F401

    import providers.microsoft.provider  # noqa: F401

    sync_bench.serve(job)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
