"""Benchmark: initial and incremental sync of a 5,000-event Microsoft 365 calendar from the
Microsoft emulator, through Calgate's real sync engine and the Microsoft Graph provider.

Run from the repository root (about a minute; not part of the test suite):

    .venv/bin/python bench/run_microsoft_bench.py             # writes bench/RESULTS-microsoft.md
    .venv/bin/python bench/run_microsoft_bench.py --no-write  # prints the report only
    .venv/bin/python bench/run_microsoft_bench.py --events 200 --rounds 2 \
        --webhook-changes 5 --no-write                         # a smoke run

What it does:

1. **Upstream.** The Microsoft emulator (tests/emulators/microsoft: HTTPS with a throwaway
   test CA, on 127.0.0.1) starts in this process and gets a work account whose default
   calendar holds 5,000 single events over days -40 .. +194 and five weekly series
   (bench/microsoft_fixtures.py), written through its Python control API.
2. **Calgate, in-process.** A fresh data dir (SQLite, local secret store) is migrated with
   ``CALGATE_OFFICE365_*`` pointing at the emulator and trusting its CA; the account signs
   in twice through msal's authorization code flow with PKCE and the emulator's consent
   page, and each grant is linked as a profile (park_credentials + link, as the consent
   step does), with the Graph scopes of Calgate's read_write grant.
3. **Sync, in child processes** (bench/sync_bench.py, loading msal and the Microsoft
   provider first, driven over stdin/stdout since the emulator's control API is in this
   process): the initial sync of the first profile (wall, CPU, peak RSS, upstream requests),
   then incremental syncs: one with nothing changed, one after each rename of a single event
   "in Outlook", and one after a whole weekly series is renamed; a second child repeats the
   initial sync on the second profile under tracemalloc.
4. **Change → webhook** (bench/microsoft_webhook.py): a second mailbox linked into a
   ``calgate serve`` + ``calgate worker`` deployment on a fresh PostgreSQL database
   (CALGATE_TEST_PG_URL, default postgres@127.0.0.1:5432) with push on and polling hourly;
   each rename in Outlook is timed to the client app's webhook through the Graph
   subscription. Both processes are stopped by their PID and the database dropped.
5. **Report** to stdout and bench/RESULTS-microsoft.md (and the index, bench/RESULTS.md).
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
import microsoft_fixtures as fx  # noqa: E402
import microsoft_report as report  # noqa: E402
import microsoft_webhook as webhook  # noqa: E402
import sync_bench  # noqa: E402

EMAIL = "bench@contoso.example"
# What a Microsoft sync imports, loaded in the child before the first measurement.
PRELOAD = ["msal", "providers.microsoft.provider"]
log = common.log


def counted(emu: Any, child: sync_bench.Child, command: dict[str, Any]) -> dict[str, Any]:
    """One sync in the child, with the upstream requests it made (from the emulator's log)."""
    return sync_bench.counted(child, command, lambda: [e.kind for e in emu.requests])


def setup(emu: Any, data_dir: Path, events: int) -> tuple[dict[str, str], list[Any], list[str]]:
    emu.register_app(fx.CLIENT_ID, fx.CLIENT_SECRET, "Calgate Bench", [fx.REDIRECT])
    emu.add_user(EMAIL, "Bench User")
    started = time.perf_counter()
    ids = fx.fill(emu, EMAIL, events, sync_bench.today())
    log(f"emulator: {events} events and 5 series written in "
        f"{time.perf_counter() - started:.1f} s")
    env = fx.settings_env(data_dir, emu)
    grants = [fx.sign_in(emu, EMAIL) for _ in range(2)]
    gateway = sync_bench.open_gateway(env, migrate_first=True)
    try:
        linked = [fx.link(gateway, EMAIL, grant) for grant in grants]
    finally:
        gateway.close()
    return env, linked, ids


def rounds(emu: Any, child: sync_bench.Child, ids: list[str], count: int, events: int
           ) -> list[dict[str, Any]]:
    """Nothing changed; then ``count`` single events renamed one at a time; then a series."""
    out = [{**counted(emu, child, {"op": "sync"}), "changed_event": None}]
    singles = [ids[(10 + 37 * k) % events] for k in range(count)]
    for n, event_id in enumerate([*singles, ids[events]]):
        what = "series 0" if n == count else f"Meeting {ids.index(event_id)}"
        emu.update_event(EMAIL, event_id, {"subject": f"Changed {time.time_ns()}"})
        out.append({**counted(emu, child, {"op": "sync"}), "changed_event": what})
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from tests.emulators.microsoft import MicrosoftEmulator

    out: dict[str, Any] = {"events": args.events, "load_before": os.getloadavg(),
                           "other_benchmarks": sync_bench.other_benchmarks()}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="calgate-microsoft-bench-") as tmp, \
            MicrosoftEmulator.running() as emu:
        env, linked, ids = setup(emu, Path(tmp) / "data", args.events)
        out["page_size"] = env.get("CALGATE_OFFICE365_PAGE_SIZE", "200 (default)")
        out.update(sync_bench.initial_and_rounds(
            env, linked, PRELOAD, args.timeout,
            lambda child, command: counted(emu, child, command),
            lambda child: rounds(emu, child, ids, args.rounds, args.events)))
        if args.webhook_changes:
            log("change -> webhook through a Graph subscription (serve + worker)")
            out["webhook"] = webhook.run(emu, webhook.WebhookOptions(
                changes=args.webhook_changes), Path(tmp) / "webhook", env, log)
    out["load_after"] = os.getloadavg()
    out["seconds"] = time.monotonic() - began
    out["machine"] = sync_bench.machine(["msal", "httpx"])
    out["argv"] = common.reproducible(sys.argv[1:])
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="single events upstream")
    parser.add_argument("--rounds", type=int, default=7, help="single-event renames")
    parser.add_argument("--webhook-changes", type=int, default=30,
                        help="changes timed to the app's webhook (0: skip that part)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per child step")
    parser.add_argument("--no-write", action="store_true", help="print, do not write")
    parser.add_argument("--json", type=Path, help="also keep the raw result here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    result = measure(args)
    return common.finish(args, result, report.render(result), "microsoft")


if __name__ == "__main__":
    sys.exit(main())
