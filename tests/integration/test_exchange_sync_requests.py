"""The Exchange sync benchmark's request counts, pinned in CI without timing anything: a small
run of bench/run_exchange_bench.py (the emulator with NTLM, the real sync engine in a child
process, EWS requests counted by operation in the emulator) whose incremental syncs cost
what issue 14's target says: one ``SyncFolderItems`` after a single event changed, and
after a series changed that plus what the series needs (a CalendarView ``FindItem`` and a
``GetItem`` for its occurrences)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _run(*argv: str) -> dict[str, Any]:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    import run_exchange_bench

    result: dict[str, Any] = run_exchange_bench.measure(run_exchange_bench.parse(list(argv)))
    return result


def test_an_incremental_sync_costs_one_sync_folder_items_plus_what_the_change_needs() -> None:
    # 120 items: one recurring master (with a cancelled and a moved occurrence), twelve
    # all-day events, the rest single events.
    result = _run("--items", "120", "--rounds", "2", "--timeout", "300")
    fixture, first = result["fixture"], result["initial"]
    assert fixture["masters"] == 1 and fixture["all_day"] == 12
    assert first["mirror_events"] == (fixture["singles"] + fixture["all_day"]
                                      + fixture["occurrences"])
    rounds = {r["kind"]: [] for r in result["incremental"]}
    for r in result["incremental"]:
        rounds[r["kind"]].append(r)
        assert r["handshakes"] == 1  # one connection per sync, authenticated once
    assert [(r["request_list"], r["changed"]) for r in rounds["none"]] == [
        ("SyncFolderItems", 0)]
    assert [(r["request_list"], r["changed"]) for r in rounds["single"]] == [
        ("SyncFolderItems", 1), ("SyncFolderItems", 1)]
    renamed, moved = rounds["series"]
    for r in (renamed, moved):
        assert r["request_list"] == "SyncFolderItems, FindItem, GetItem"
        assert r["requests"] == 3
    assert renamed["changed"] == renamed["occurrences"] > 0  # every occurrence renamed
    assert moved["changed"] > 0
