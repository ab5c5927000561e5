"""Report rows the provider sync benches' reports share (bench/exchange_report.py and
microsoft_report.py), from what bench/sync_bench.py measured."""

from __future__ import annotations

from typing import Any


def load_line(result: dict[str, Any], sharing: str) -> str:
    """A report's "load" row: who else used the machine, its load average before and after
    the run and the other benchmark runners seen at its start."""
    before, after = result["load_before"], result["load_after"]
    return (f"shared: {sharing} were using the same 2 cores; load average (1 min) "
            f"{before[0]:.2f} before, {after[0]:.2f} after; other benchmark runners seen at "
            f"start: {len(result['other_benchmarks'])}")


def initial_rows(first: dict[str, Any], traced: dict[str, Any]) -> list[str]:
    """A report's table rows for what an initial sync wrote and the memory it took:
    ``first`` the plain sync's answer, ``traced`` the one under tracemalloc."""
    return [
        f"|   mirror rows written (events) | {first['changed']:,} "
        f"({first['mirror_events']:,} live) | |  |",
        f"|   peak RSS of the syncing process (VmHWM; at start of sync) | "
        f"{first['hwm_kb'] / 1024:.0f} MB ({first['rss_before_kb'] / 1024:.0f} MB) | (none) |"
        "  |",
        f"|   tracemalloc peak (Python allocations during the sync) | "
        f"{(traced['tracemalloc_peak_b'] or 0) / 2 ** 20:.0f} MiB | (none) |  |"]
