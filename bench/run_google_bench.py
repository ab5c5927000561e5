"""Benchmark: initial and incremental sync of a 5,000-event Google calendar from the Google
emulator, through Calgate's real sync engine and the Google provider.

Run from the repository root (about half a minute):

    .venv/bin/python bench/run_google_bench.py             # writes bench/RESULTS-google.md
    .venv/bin/python bench/run_google_bench.py --no-write  # prints the report only
    .venv/bin/python bench/run_google_bench.py --events 300 --rounds 2 --no-write  # a smoke run

What it does:

1. **Upstream.** The Google emulator (tests/emulators/google) starts in this process and
   gets a user whose primary calendar holds 5,000 single events over days -40 .. +194 and
   five weekly series (bench/google_fixtures.py), written through its control API.
2. **Calgate, in-process.** A fresh data dir (SQLite, local secret store) is migrated with
   ``CALGATE_GOOGLE_URL`` pointing at the emulator; a client is registered and the Google
   account is linked twice (park_credentials + link, as the consent step does) with two
   refresh tokens the emulator issued for the least-privilege scopes of Calgate's
   read_write grant.
3. **Sync, in child processes** (bench/google_sync.py over bench/sync_bench.py, driven over
   stdin/stdout; this process makes the owner's changes): the initial sync of the first
   profile (wall, CPU, peak RSS, upstream requests), then incremental syncs after one event
   was renamed in Google (requests, CPU, wall); a second child repeats the initial sync on
   the second profile under tracemalloc.
4. **Report** to stdout and bench/RESULTS-google.md. The children are stopped by their PID
   on timeout; the emulator stops with this process. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import google_fixtures as fx  # noqa: E402
import sync_bench  # noqa: E402

TARGETS = {"incremental_requests": 2}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def setup(emu: Any, data_dir: Path, events: int
          ) -> tuple[dict[str, Any], list[Any], str, dict[str, str]]:
    from providers.google.oauth import upstream_scopes
    from tests.emulators.google.shared import CLIENT_ID, CLIENT_SECRET

    emu.register_app(CLIENT_ID, CLIENT_SECRET, "Calgate Bench", [])
    email = emu.add_user("bench@example.com", tz="Europe/Berlin")
    started = time.perf_counter()
    fx.fill(emu, email, events, sync_bench.today())
    log(f"emulator: {events} events and 5 series written in "
        f"{time.perf_counter() - started:.1f} s")
    env = fx.settings_env(data_dir, emu.base_url)
    gateway = sync_bench.open_gateway(env, migrate_first=True)
    scopes = upstream_scopes(sync_bench.SCOPES)
    linked = []
    spare = {"refresh_token": emu.issue_refresh_token(email, CLIENT_ID, scopes),
             "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    try:
        for _ in range(2):
            refresh = emu.issue_refresh_token(email, CLIENT_ID, scopes)
            linked.append(fx.link_google(gateway, email, {
                "refresh_token": refresh, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET}))
    finally:
        gateway.close()
    return env, linked, email, spare


def rounds(child: sync_bench.Child, upstream: fx.EmulatorLog, base_url: str, email: str,
           args: argparse.Namespace) -> list[dict[str, Any]]:
    """Nothing changed; then ``--rounds`` events renamed in Google one at a time; last, a
    whole weekly series renamed (its instances come again: events.list + instances)."""
    out = []
    singles = (f"bench{(10 + 37 * k) % args.events:05d}" for k in range(args.rounds))
    for event_id in [None, *singles, "series0"]:
        if event_id is not None:
            fx.change_event(base_url, email, event_id, f"Changed {time.time_ns()}")
        out.append({**sync_bench.counted(child, {"op": "sync"}, upstream.names),
                    "changed_event": event_id})
    return out


def measure(args: argparse.Namespace) -> str:
    from tests.emulators.google import GoogleEmulator

    busy = sync_bench.other_benchmarks()
    if busy:
        raise SystemExit(f"another benchmark is running: {busy}")
    with tempfile.TemporaryDirectory(prefix="calgate-google-bench-") as tmp, \
            GoogleEmulator.running() as emu:
        env, linked, email, spare = setup(emu, Path(tmp) / "data", args.events)
        upstream = fx.EmulatorLog(emu.base_url)
        base = {"env": env, "email": email}
        log("initial sync + incremental rounds (child 1)")
        child = sync_bench.Child("google_sync.py", {
            **base, "profile_id": linked[0].profile_id, "subject": linked[0].subject}, 300)
        try:
            main = {"events": args.events,
                    "initial": sync_bench.counted(child, {"op": "sync"}, upstream.names),
                    "incremental": rounds(child, upstream, emu.base_url, email, args)}
        finally:
            child.close()
        log("initial sync under tracemalloc (child 2)")
        traced_child = sync_bench.Child("google_sync.py", {
            **base, "profile_id": linked[1].profile_id, "subject": linked[1].subject,
            "credentials": spare, "endpoints": emu.endpoints}, 300)
        try:
            traced = {"provider_only": traced_child.ask({"op": "provider_only"}),
                      "initial": sync_bench.counted(traced_child, {"op": "sync", "trace": True},
                                                    upstream.names)}
        finally:
            traced_child.close()
        info = sync_bench.machine(["google-api-python-client", "google-auth", "httplib2"])
    report = render(info, main, traced)
    if not args.no_write:
        (BENCH / "RESULTS-google.md").write_text(report)
        from results_index import write_index

        write_index()
    return report


def passed(requests: int) -> str:
    return "**pass**" if requests <= TARGETS["incremental_requests"] else "**miss**"


def render(info: dict[str, str], main: dict[str, Any], traced: dict[str, Any]) -> str:
    first = main["initial"]
    alone = traced["provider_only"]
    rounds = main["incremental"]
    changed = rounds[1:-1]  # single events; the last round renames a series
    series = rounds[-1]
    cpu = sorted(r["cpu_s"] for r in changed)
    wall = sorted(r["wall_s"] for r in changed)
    worst = max(r["requests"] for r in changed)
    verdict = passed(worst)
    lines = ["# Calgate Google sync benchmark results", "",
             "Generated by `bench/run_google_bench.py` (see its docstring).", "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += ["", "## Results vs targets", "",
              f"Upstream: the Google emulator (tests/emulators/google, in the runner's process)"
              f" with {main['events']:,} single events and 5 weekly series in the primary "
              "calendar; "
              "Calgate's real `SyncEngine.sync_profile` with the Google provider "
              "(google-api-python-client 2.x over httplib2, static discovery document), "
              "SQLite, local secret store, in a child process. Requests are counted in the "
              "emulator's log.", "",
              "| metric | measured | target | verdict |", "|---|---:|---:|---|",
              f"| incremental sync, 1 event renamed in Google: upstream requests (max of "
              f"{len(changed)}) | {worst} | ≤ {TARGETS['incremental_requests']} | {verdict} |",
              f"|   CPU time of the sync (median; max) | {statistics.median(cpu) * 1000:.0f} ms;"
              f" {cpu[-1] * 1000:.0f} ms | (none) |  |",
              f"|   wall time (median) | {statistics.median(wall) * 1000:.0f} ms | (none) |  |",
              f"| incremental sync, a weekly series renamed in Google: upstream requests | "
              f"{series['requests']} | ≤ {TARGETS['incremental_requests']} | "
              f"{passed(series['requests'])} |",
              f"|   CPU time; mirror rows changed | {series['cpu_s'] * 1000:.0f} ms; "
              f"{series['changed']} | (none) |  |",
              f"| initial sync: wall time | {first['wall_s']:.2f} s | (none) |  |",
              f"|   CPU time | {first['cpu_s']:.2f} s | (none) |  |",
              f"|   upstream requests | {first['requests']} | (none) |  |",
              f"|   mirror rows written (events) | {first['changed']:,} "
              f"({first['mirror_events']:,} live) | |  |",
              f"|   peak RSS of the syncing process (VmHWM; at start of sync) | "
              f"{first['hwm_kb'] / 1024:.0f} MB ({first['rss_before_kb'] / 1024:.0f} MB) |"
              " (none) |  |",
              f"|   tracemalloc peak (Python allocations during the sync) | "
              f"{(traced['initial']['tracemalloc_peak_b'] or 0) / 2 ** 20:.0f} MiB | (none) |"
              "  |",
              f"| the same listing through `GoogleProvider.sync` alone (no mirror): wall; CPU"
              f" | {alone['wall_s']:.2f} s; {alone['cpu_s']:.2f} s | (none) |  |",
              "", "## Details", "",
              f"Initial sync requests: {first['request_list']}.", "",
              "| incremental round | event changed | requests | CPU | wall | mirror rows "
              "changed |", "|---|---|---:|---:|---:|---:|"]
    for n, r in enumerate(rounds):
        what = r["changed_event"] or "none"
        lines.append(f"| {n} | {what} | {r['requests']} ({r['request_list'] or '-'}) | "
                     f"{r['cpu_s'] * 1000:.0f} ms | {r['wall_s'] * 1000:.0f} ms | "
                     f"{r['changed']} |")
    lines += ["", f"`GoogleProvider.sync` alone turned the {main['events']:,}-event listing into "
              f"{alone['instances']:,} instances in {alone['cpu_s']:.2f} s of CPU: the rest of "
              "the initial sync's CPU time is the sync engine writing the mirror (row "
              "fingerprints, sealing event text with the account's data key, SQLite).", "",
              "The first incremental sync comes right after the initial one with nothing "
              "changed. Each later one follows one rename made through the emulator's control "
              "API; the last renames a whole weekly series, whose instances in the window are "
              "then listed again with `events.instances` (a changed series always is: the "
              "sync token's listing carries only what changed, and ChangeSet replaces a "
              "resource's instances as a whole). An incremental sync of single events is one "
              "`events.list` with the sync token: the "
              "calendar list is read on its own slower cadence by the sync engine, and the "
              "access token is reused from the provider's process-wide cache (no refresh).",
              ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="single events upstream")
    parser.add_argument("--rounds", type=int, default=7, help="single-event renames")
    parser.add_argument("--no-write", action="store_true", help="print, do not write")
    args = parser.parse_args()
    print(measure(args))


if __name__ == "__main__":
    main()
