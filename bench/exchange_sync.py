"""Sync measurements for bench/run_exchange_bench.py, in a process of their own so the CPU
time and peak memory belong to the sync alone. The Exchange emulator has only a Python
control API and runs in the runner's process, so the runner drives this child one command
at a time over stdin/stdout (bench/sync_bench.py describes the commands and what each sync
reports):

    python bench/exchange_sync.py '<json job>'
    <- {"op": "sync"}                 -> SYNC_JSON {"wall_s": ..., "cpu_s": ..., ...}
    <- {"op": "sync", "trace": true}  (the same under tracemalloc)
    <- {"op": "quit"}                 (closes the gateway and exits)
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
    # What an Exchange sync imports, loaded before the first measurement.
    import exchangelib  # noqa: F401

    import providers.exchange.provider  # noqa: F401

    sync_bench.serve(job)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
