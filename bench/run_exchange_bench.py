"""Benchmark: initial and incremental sync of a 5,000-item Exchange calendar from the Exchange
emulator, through Calgate's real sync engine and the Exchange provider (EwsProvider,
exchangelib unmodified, NTLM).

Run from the repository root (a few minutes on a shared 2-core machine; not part of the
test suite):

    .venv/bin/python bench/run_exchange_bench.py             # writes bench/RESULTS-exchange.md
    .venv/bin/python bench/run_exchange_bench.py --no-write  # prints the report only
    .venv/bin/python bench/run_exchange_bench.py --items 200 --rounds 2 --no-write  # a smoke run

What it does:

1. **Upstream.** The Exchange emulator (tests/emulators/exchange: HTTPS with a throwaway test
   CA, NTLM through pyspnego's acceptor, on 127.0.0.1) starts in this process with one
   mailbox whose default calendar holds 5,000 items: single events (every fifth with
   attendees), all-day events and weekly recurring masters with a cancelled and a moved
   occurrence (bench/exchange_fixtures.py), written through its Python control API.
2. **Calgate, in-process.** A fresh data dir (SQLite, local secret store) is migrated with
   ``CALGATE_EXCHANGE_CA_BUNDLE`` naming the emulator's CA and loopback allowed by the
   outbound guard; a client app is registered and the mailbox linked twice with the
   credentials the consent form keeps (email, password, EWS URL, DOMAIN\\user login).
3. **Sync, in child processes** (bench/sync_bench.py, loading exchangelib and the Exchange
   provider first, driven over stdin/stdout since the emulator's control API is in this
   process): the initial sync of the first profile (wall, CPU, peak RSS, EWS requests by
   operation), then incremental syncs: one with nothing changed, one after each rename of a
   single event "in Outlook", one after a weekly series is renamed and one after an
   occurrence of a series is moved; a second child repeats the initial sync on the second
   profile under tracemalloc. EWS requests are counted by operation in the emulator (every
   SOAP request it answered), NTLM handshakes by its acceptor, and the emulator's own CPU
   time (this process's, while the child syncs) is kept apart from the child's.
4. **Report** to stdout and bench/RESULTS-exchange.md (and the index, bench/RESULTS.md).
   The children are stopped by their PID on timeout and on any failure; the emulator stops
   with this process. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import bench_common as common  # noqa: E402
import exchange_fixtures as fx  # noqa: E402
import exchange_report as report  # noqa: E402
import sync_bench  # noqa: E402

EMAIL = "bench@contoso.test"
# What an Exchange sync imports, loaded in the child before the first measurement.
PRELOAD = ["exchangelib", "providers.exchange.provider"]
log = common.log


def counted(emu: Any, child: sync_bench.Child, command: dict[str, Any]) -> dict[str, Any]:
    """One sync in the child, with the EWS requests (by operation) and NTLM handshakes it
    cost and the emulator's CPU time meanwhile (this process does nothing else)."""
    handshakes, cpu0 = emu.auth.handshakes, time.process_time()
    result = sync_bench.counted(child, command, lambda: list(emu.operations))
    return {**result, "handshakes": emu.auth.handshakes - handshakes,
            "emulator_cpu_s": time.process_time() - cpu0}


def setup(emu: Any, data_dir: Path, items: int) -> tuple[dict[str, str], list[Any],
                                                          fx.Filled]:
    emu.add_user(EMAIL, fx.PASSWORD)
    started = time.perf_counter()
    filled = fx.fill(emu, EMAIL, items, sync_bench.today())
    log(f"emulator: {items} items ({len(filled.masters)} recurring masters) written in "
        f"{time.perf_counter() - started:.1f} s")
    env = fx.settings_env(data_dir, emu)
    gateway = sync_bench.open_gateway(env, migrate_first=True)
    try:
        linked = [sync_bench.link(gateway, "exchange", EMAIL, EMAIL.lower(),
                                  fx.credentials(emu, EMAIL), "Exchange Bench")
                  for _ in range(2)]
    finally:
        gateway.close()
    return env, linked, filled


def rounds(emu: Any, child: sync_bench.Child, filled: fx.Filled, count: int
           ) -> list[dict[str, Any]]:
    """Nothing changed; ``count`` single events renamed one at a time; a series renamed;
    one occurrence of another series moved (the master changes: an exception)."""
    out = [{**counted(emu, child, {"op": "sync"}), "changed_event": None, "kind": "none"}]
    singles = filled.singles
    for k in range(count):
        item_id = singles[(10 + 37 * k) % len(singles)]
        named = emu.mailbox(EMAIL).get(item_id).text("Subject")
        emu.edit(EMAIL, item_id, Subject=f"Changed {time.time_ns()}")
        out.append({**counted(emu, child, {"op": "sync"}), "kind": "single",
                    "changed_event": named})
    if filled.masters:
        renamed, moved = filled.masters[0], filled.masters[len(filled.masters) // 2]
        emu.edit(EMAIL, renamed, Subject=f"Changed {time.time_ns()}")
        out.append({**counted(emu, child, {"op": "sync"}), "kind": "series",
                    "changed_event": "a weekly series renamed",
                    "occurrences": fx.occurrences(emu, EMAIL, [renamed])})
        out.append({**move_one(emu, child, moved), "kind": "series",
                    "changed_event": "one occurrence of a series moved",
                    "occurrences": fx.occurrences(emu, EMAIL, [moved])})
    return out


def move_one(emu: Any, child: sync_bench.Child, master_id: str) -> dict[str, Any]:
    from datetime import datetime, timedelta

    master = emu.mailbox(EMAIL).get(master_id)
    first = datetime.fromisoformat(master.text("Start").replace("Z", "+00:00"))
    original = fx.original(first, 1)
    emu.move_occurrence(EMAIL, master_id, original, original + timedelta(hours=1),
                        original + timedelta(hours=2))
    return counted(emu, child, {"op": "sync"})


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from tests.emulators.exchange import ExchangeEmulator

    out: dict[str, Any] = {"items": args.items, "load_before": os.getloadavg(),
                           "other_benchmarks": sync_bench.other_benchmarks()}
    began = time.monotonic()
    emu = ExchangeEmulator().start()
    try:
        with tempfile.TemporaryDirectory(prefix="calgate-exchange-bench-") as tmp:
            env, linked, filled = setup(emu, Path(tmp) / "data", args.items)
            out["fixture"] = {"singles": len(filled.singles), "all_day": len(filled.all_day),
                              "masters": len(filled.masters),
                              "occurrences": filled.occurrences}
            out.update(children(emu, env, linked, filled, args))
    finally:
        emu.stop()
    out["load_after"] = os.getloadavg()
    out["seconds"] = time.monotonic() - began
    out["machine"] = sync_bench.machine(["exchangelib", "requests-ntlm", "pyspnego"])
    out["argv"] = common.reproducible(sys.argv[1:])
    return out


def children(emu: Any, env: dict[str, str], linked: list[Any], filled: fx.Filled,
             args: argparse.Namespace) -> dict[str, Any]:
    return sync_bench.initial_and_rounds(
        env, linked, PRELOAD, args.timeout,
        lambda child, command: counted(emu, child, command),
        lambda child: rounds(emu, child, filled, args.rounds))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=5000, help="items in the calendar")
    parser.add_argument("--rounds", type=int, default=7, help="single-event renames")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per child step")
    parser.add_argument("--no-write", action="store_true", help="print, do not write")
    parser.add_argument("--json", type=Path, help="also keep the raw result here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    result = measure(args)
    return common.finish(args, result, report.render(result), "exchange")


if __name__ == "__main__":
    sys.exit(main())
